package initsteps_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
)

// The official image's prosody user has another uid than ours. Its data volume, mounted here,
// is given to prosody at start (the top and that uid's files), so Prosody can read its
// accounts; with PROSODY_DATA_ADOPT=false the files keep their owner (the top of the data
// directory is prosody's either way: the directories stage always sets it).
func TestDataVolumeOfAnotherUIDIsAdopted(t *testing.T) {
	const official = 4100
	for _, tc := range []struct {
		name  string
		adopt string
		want  func(uid int) int // the account file's owner
	}{
		{"adopted", "true", func(uid int) int { return uid }},
		{"opted out", "false", func(int) int { return official }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, env := server(t, map[string]string{"PROSODY_DATA_ADOPT": tc.adopt})
			data := filepath.Join(root, "data")
			account := filepath.Join(data, "localhost", "accounts", "alice.dat")
			if err := os.MkdirAll(filepath.Dir(account), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(account, []byte("return { password = \"x\" };\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{data, filepath.Join(data, "localhost"), filepath.Dir(account), account} {
				if err := os.Chown(p, official, official); err != nil {
					t.Fatal(err)
				}
			}
			s := initsteps.New(initsteps.Config{Env: env})
			if _, err := run(t, s, initsteps.Preamble()); err != nil {
				t.Fatal(err)
			}
			uid, _ := prosodytest.IDs(t)
			for p, want := range map[string]int{data: uid, account: tc.want(uid)} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if got := int(fi.Sys().(*syscall.Stat_t).Uid); got != want {
					t.Errorf("%s: owner %d, want %d", p, got, want)
				}
			}
		})
	}
}
