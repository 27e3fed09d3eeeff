package suggest

import "testing"

func TestClosest(t *testing.T) {
	for _, tc := range []struct {
		name       string
		candidates []string
		want       string
	}{
		{"PROSODY_PROFLE", []string{"PROSODY_PROFILE", "PROSODY_DOMAIN"}, "PROSODY_PROFILE"},
		{"auth/fsat", []string{"auth/fast", "web/admin"}, "auth/fast"},
		{"standrad", []string{"minimal", "standard"}, "standard"},
		{"Standard", []string{"standard"}, "standard"},
		{"x", nil, ""},
		{"completely-different", []string{"standard"}, ""},
		{"ab", []string{"ac", "ad"}, "ac"},             // ties go to the first
		{"x/tow", []string{"x/one", "x/two"}, "x/two"}, // a swap is one edit
	} {
		if got := Closest(tc.name, tc.candidates); got != tc.want {
			t.Errorf("Closest(%q, %q) = %q, want %q", tc.name, tc.candidates, got, tc.want)
		}
	}
}
