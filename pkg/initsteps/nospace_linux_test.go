package initsteps_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
)

// A full data volume (a real 64 KiB tmpfs, filled) is not a configuration
// error: the secrets and tls stages fail with an error IsNoSpace recognises
// and that names the volume, and leave no partial file in it. The tls stage
// gets room for exactly one block: the generated key fits, its certificate
// does not, and no key may be left without its certificate.
func TestFullDataVolumeIsNoSpaceNotConfig(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it mounts a small tmpfs as the data volume")
	}
	for _, tc := range []struct {
		stage initsteps.Stage[*initsteps.State]
		dir   string // what the stage writes into, under the data directory
		leave int    // blocks left free
	}{
		{initsteps.Secrets, "secrets", 0},
		{initsteps.TLS, "certs", 1},
	} {
		t.Run(tc.stage.Name, func(t *testing.T) {
			data := prosodytest.Volume(t, 64<<10)
			_, env := server(t, map[string]string{"PROSODY_DATA_DIR": data})
			s := initsteps.New(initsteps.Config{Env: env})
			if _, err := run(t, s, initsteps.Preamble(), []initsteps.Stage[*initsteps.State]{initsteps.Plan}); err != nil {
				t.Fatal(err)
			}
			prosodytest.Fill(t, data, tc.leave)

			_, err := run(t, s, []initsteps.Stage[*initsteps.State]{tc.stage})
			if !initsteps.IsNoSpace(err) || !errors.Is(err, atomicfile.ErrNoSpace) || initsteps.IsConfig(err) {
				t.Fatalf("err = %v; want a full-volume error that is not a configuration error", err)
			}
			if !strings.Contains(err.Error(), "is full") || !strings.Contains(err.Error(), data) {
				t.Errorf("message %q does not say that the volume at %s is full", err, data)
			}
			entries, rerr := os.ReadDir(filepath.Join(data, tc.dir))
			if rerr != nil && !os.IsNotExist(rerr) {
				t.Fatal(rerr)
			}
			for _, e := range entries {
				t.Errorf("%s left %s in the full volume", tc.stage.Name, filepath.Join(tc.dir, e.Name()))
			}
		})
	}
}
