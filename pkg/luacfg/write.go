package luacfg

import (
	"os"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// WriteAtomic makes path hold data with the given mode and owner (uid:gid,
// -1 keeps); changed is false when the bytes were already there.
//
// Deprecated: it is atomicfile.Write, kept so callers move in one step; use
// atomicfile.Write.
func WriteAtomic(path string, data []byte, mode os.FileMode, uid, gid int) (changed bool, err error) {
	return atomicfile.Write(path, data, mode, uid, gid)
}
