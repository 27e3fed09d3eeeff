package supervise

import (
	"os"
	"os/user"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestPrivilegeDrop(t *testing.T) {
	prosody, err := LookupUser("prosody")
	if err != nil {
		t.Fatalf("%v (install the Debian package prosody, which creates the user)", err)
	}
	for _, tc := range []struct {
		name           string
		euid, egid     int
		user, uid, gid string
		want           *Credential
		err            string
	}{
		{name: "root drops to user", user: "prosody", want: prosody},
		{name: "root with uid override", user: "prosody", uid: "4000", want: &Credential{UID: 4000, GID: prosody.GID, Home: prosody.Home}},
		{name: "root with both overrides, no user", user: "no-such-user", uid: "4000", gid: "4001", want: &Credential{UID: 4000, GID: 4001}},
		{name: "root, missing user", user: "no-such-user", err: `user "no-such-user" not found`},
		{name: "root, unknown user override", user: "prosody", uid: "12x", err: `user "12x" not found`},
		{name: "root, override to root", user: "prosody", uid: "0", err: "refusing to run the child as uid 0"},
		{name: "non-root runs as itself", euid: 1000, egid: 1000, user: "prosody", want: nil},
		{name: "non-root, same override", euid: 1000, egid: 1000, user: "prosody", uid: "1000", want: nil},
		{name: "non-root cannot switch", euid: 1000, egid: 1000, user: "prosody", uid: "1001", err: "only root can switch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := privilegeDrop(tc.euid, tc.egid, tc.user, tc.uid, tc.gid)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || (got != nil && !reflect.DeepEqual(got, tc.want)) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRunAs: plain init's PROSODY_UID/PROSODY_GID, by name or number, read
// from the real /etc/passwd and /etc/group (the postgres user of the Debian
// package is in ssl-cert besides its own group).
func TestRunAs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: only root can switch users (CI runs the tests as root)")
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("%v (install the Debian package postgresql, which creates the user)", err)
	}
	pgUID, _ := strconv.Atoi(pg.Uid)
	pgGID, _ := strconv.Atoi(pg.Gid)
	sslCert, err := user.LookupGroup("ssl-cert")
	if err != nil {
		t.Fatal(err)
	}
	sslGID, _ := strconv.Atoi(sslCert.Gid)
	pgAll := &Credential{UID: uint32(pgUID), GID: uint32(pgGID), Groups: []uint32{uint32(sslGID)}, Home: pg.HomeDir}
	for _, tc := range []struct {
		name, user, group string
		want              *Credential
		err               string
	}{
		{name: "unset: the entrypoint's own", want: nil},
		{name: "name brings primary and supplementary groups", user: "postgres", want: pgAll},
		{name: "uid in passwd is the same as its name", user: pg.Uid, want: pgAll},
		{name: "nobody by number", user: "65534", want: &Credential{UID: 65534, GID: 65534, Home: "/nonexistent"}},
		{name: "group given: that gid, no supplementary groups", user: "postgres", group: "nogroup", want: &Credential{UID: uint32(pgUID), GID: 65534, Home: pg.HomeDir}},
		{name: "numeric gid", user: "postgres", group: "4001", want: &Credential{UID: uint32(pgUID), GID: 4001, Home: pg.HomeDir}},
		{name: "unknown uid with a gid", user: "4000", group: "4001", want: &Credential{UID: 4000, GID: 4001}},
		{name: "group alone keeps the uid", group: "nogroup", want: &Credential{UID: 0, GID: 65534}},
		{name: "unknown uid alone has no group", user: "4000", err: "set PROSODY_GID too"},
		{name: "unknown user", user: "no-such-user-pfe", err: `user "no-such-user-pfe" not found`},
		{name: "unknown group", user: "postgres", group: "no-such-group-pfe", err: `group "no-such-group-pfe" not found`},
		{name: "root by name", user: "root", err: "uid 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RunAs(tc.user, tc.group)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestPrivilegeDropByName: the Prosody pipeline's PROSODY_UID/PROSODY_GID may
// be names too, with RunAs' rule: a user alone (by name, or a uid in
// /etc/passwd) brings its primary group and its supplementary groups (the
// postgres user of the Debian package is in ssl-cert); a group given leaves
// none.
func TestPrivilegeDropByName(t *testing.T) {
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("%v (install the Debian package postgresql, which creates the user)", err)
	}
	sslCert, err := user.LookupGroup("ssl-cert")
	if err != nil {
		t.Fatal(err)
	}
	pgUID, _ := strconv.Atoi(pg.Uid)
	pgGID, _ := strconv.Atoi(pg.Gid)
	sslGID, _ := strconv.Atoi(sslCert.Gid)
	pgAll := &Credential{UID: uint32(pgUID), GID: uint32(pgGID), Groups: []uint32{uint32(sslGID)}, Home: pg.HomeDir}
	for _, tc := range []struct {
		name, uid, gid string
		want           *Credential
	}{
		{name: "user and group names", uid: "nobody", gid: "nogroup", want: &Credential{UID: 65534, GID: 65534, Home: "/nonexistent"}},
		{name: "a name brings its groups", uid: "postgres", want: pgAll},
		{name: "a uid in passwd is its name", uid: pg.Uid, want: pgAll},
		{name: "a group given leaves no supplementary groups", uid: "postgres", gid: "nogroup", want: &Credential{UID: uint32(pgUID), GID: 65534, Home: pg.HomeDir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := privilegeDrop(0, 0, "prosody", tc.uid, tc.gid)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
