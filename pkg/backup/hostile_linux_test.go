package backup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"golang.org/x/sys/unix"
)

// A backup run as root (`docker exec ... entrypoint backup`) walks a data
// directory prosody changes while it runs. prosody swaps a file it owns, back
// and forth, for a link to a root-only file: whenever the walk saw the
// regular file and the open met the link, the root-only file went into the
// archive. The swap is a race, so the test runs backups for as long as
// prosody swaps (a thousand swaps, a second or two): before the fix one of them
// held the secret; with it none may, and a backup that met the link fails
// naming it.
func TestRootBackupNeverReadsThroughALinkProsodySwapsIn(t *testing.T) {
	base := prosodytest.Dir(t, "data", "scratch") // scratch: the swap's new names, out of the walk
	data := filepath.Join(base, "data")
	secret := "root-only content that prosody must never get: " + strings.Repeat("s", 64)
	secretFile := filepath.Join(t.TempDir(), "root-only")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	prosodytest.AsProsody(t, "sh", "-c", `printf x > "$1/f"`, "sh", data)

	done := make(chan []byte, 1)
	go func() {
		uid, gid := prosodytest.IDs(t)
		out, err := prosodytest.As(t, uid, gid, nil, "sh", "-c", `cd "$1" || exit 1
i=0
while [ $i -lt 500 ]; do
	ln -s "$2" scratch/l && mv -T scratch/l data/f || exit 1
	printf x > scratch/r && mv -T scratch/r data/f || exit 1
	i=$((i+1))
done`, "sh", base, secretFile)
		if err != nil {
			out = append(out, []byte("\nswapper: "+err.Error())...)
		}
		done <- out
	}()
	backups, refused := 0, 0
	for {
		select {
		case out := <-done:
			if len(out) > 0 {
				t.Fatalf("prosody's swapper failed: %s", out)
			}
			t.Logf("%d backups during the swaps, %d refused a link", backups, refused)
			if backups == 0 {
				t.Fatal("no backup ran while prosody swapped")
			}
			return
		default:
		}
		var buf bytes.Buffer
		m, err := Create(context.Background(), Config{DataDir: data, Storage: "internal"}, &buf)
		backups++
		if err != nil {
			// The link met at resolve (ErrUnsafeLink), at the look before
			// the open (ErrNotRegular) or by the open's O_NOFOLLOW (ELOOP):
			// refused each time.
			if !errors.Is(err, atomicfile.ErrUnsafeLink) && !errors.Is(err, atomicfile.ErrNotRegular) && !errors.Is(err, unix.ELOOP) {
				t.Fatalf("backup %d: %v; want success or a refused link", backups, err)
			}
			refused++
			continue
		}
		for _, f := range m.Files {
			if f.Size == int64(len(secret)) {
				t.Fatalf("backup %d as root archived %s with the root-only file's content, read through prosody's link", backups, f.Path)
			}
		}
	}
}
