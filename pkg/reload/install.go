package reload

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
)

// install puts the candidate next where Prosody reads it (live): its
// certificates, its credentials, then the config staged at side by one
// atomic rename. It is all or nothing: when a step fails, every file the
// earlier steps replaced or added in the certificate and credential
// directories is put back as it was, so the running Prosody never meets a
// new key beside an old config (or new secrets without the config that
// reads them). The error names the step; a failed rollback is joined to it.
func install(next *initsteps.State, live initsteps.Paths, side string) error {
	saved, err := saveFiles(live.Certs, live.Credentials)
	if err != nil {
		return err
	}
	next.Paths = live
	err = next.InstallCerts()
	if err == nil {
		err = next.WriteCredentials(live.Credentials)
	}
	if err == nil {
		if err = os.Rename(side, live.Config); err != nil {
			err = fmt.Errorf("install %s: %w", live.Config, err)
		}
	}
	if err != nil {
		if rerr := saved.restore(); rerr != nil {
			return errors.Join(err, fmt.Errorf("put the previous files back: %w", rerr))
		}
	}
	return err
}

// savedFile is one regular file as it was before an install.
type savedFile struct {
	data     []byte
	mode     os.FileMode
	uid, gid int
}

// snapshot is the regular files of some directories before an install.
type snapshot struct {
	dirs  []string
	files map[string]savedFile
}

// saveFiles reads every regular file directly in dirs (a missing directory
// is empty). Certificates and credentials are small; the cap is atomicfile's.
func saveFiles(dirs ...string) (*snapshot, error) {
	s := &snapshot{dirs: dirs, files: map[string]savedFile{}}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("save %s before install: %w", dir, err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			p := filepath.Join(dir, e.Name())
			data, err := atomicfile.ReadFile(p, atomicfile.ReadOptions{})
			if err != nil {
				return nil, fmt.Errorf("save %s before install: %w", p, err)
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return nil, fmt.Errorf("save %s before install: %w", p, err)
			}
			f := savedFile{data: data, mode: fi.Mode().Perm(), uid: -1, gid: -1}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				f.uid, f.gid = int(st.Uid), int(st.Gid)
			}
			s.files[p] = f
		}
	}
	return s, nil
}

// restore writes every saved file back and removes the regular files that
// appeared since.
func (s *snapshot) restore() error {
	var errs []error
	for _, dir := range s.dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // nothing was installed there
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if _, kept := s.files[p]; !kept && e.Type().IsRegular() {
				if err := os.Remove(p); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	for p, f := range s.files {
		if _, err := atomicfile.Write(p, f.data, f.mode, f.uid, f.gid); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
