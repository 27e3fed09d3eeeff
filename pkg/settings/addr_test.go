package settings

import "testing"

func TestC2SProbeAddr(t *testing.T) {
	for _, tc := range []struct {
		interfaces []string
		want       string
	}{
		{nil, "127.0.0.1:5222"},
		{[]string{"*"}, "127.0.0.1:5222"},
		{[]string{"::"}, "[::1]:5222"},
		{[]string{"::", "*"}, "127.0.0.1:5222"},
		{[]string{"192.0.2.7"}, "192.0.2.7:5222"},
		{[]string{"192.0.2.7", "::1"}, "[::1]:5222"},
	} {
		st := &Settings{Interfaces: tc.interfaces, C2SPort: 5222}
		if got := st.C2SProbeAddr(); got != tc.want {
			t.Errorf("interfaces %q: %s, want %s", tc.interfaces, got, tc.want)
		}
	}
}
