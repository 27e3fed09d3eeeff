package migrate_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"github.com/prosody-pfe/prosody-pfe/pkg/migrate"
)

// The root entrypoint reads <data>/migrations.json at every start (and
// `entrypoint backup` does too), in a directory prosody can change: a link
// prosody plants there must not make root read a file prosody cannot, here a
// root-only file whose record would say the data is in postgres.
func TestReadRecordRefusesALinkPlantedByProsody(t *testing.T) {
	data := prosodytest.Dir(t)
	secret := filepath.Join(t.TempDir(), "root-only.json")
	if err := os.WriteFile(secret, []byte(`{"current":"postgres"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	prosodytest.AsProsody(t, "ln", "-s", secret, filepath.Join(data, migrate.RecordFile))

	r, err := migrate.ReadRecord(data)
	if !errors.Is(err, atomicfile.ErrUnsafeLink) {
		t.Fatalf("ReadRecord through prosody's link: record %+v, error %v; want an error matching ErrUnsafeLink", r, err)
	}
	if r.Current != "" {
		t.Errorf("root read the link's target: current %q", r.Current)
	}
}
