package supervise

import (
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
		{name: "root, bad override", user: "prosody", uid: "12x", err: `uid override "12x" is not valid`},
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
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
