package supervise

import (
	"errors"
	"io/fs"
	"strings"
)

// ExecCode is the exit code, as a shell gives it, for a program that could
// not replace the entrypoint (the error of ExecReplace): CodeNotFound when
// it does not exist or is not in PATH, CodeNotExecutable otherwise.
func ExecCode(err error) int {
	if errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "not found") {
		return CodeNotFound
	}
	return CodeNotExecutable
}
