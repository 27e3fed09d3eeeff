package initsteps

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// The umask Prosody starts with is its `umask` option, read as pposix reads
// it (octal digits; a Lua number by the digits it prints), Prosody's default
// 027 without one, and never laxer than that for a value Prosody would not
// understand.
func TestChildUmask(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value any // nil: no umask option
		want  uint32
		err   string
	}{
		{name: "unset: Prosody's default", want: 0o027},
		{name: "string", value: "0077", want: 0o077},
		{name: "string without a leading zero", value: "27", want: 0o027},
		{name: "number, read by its digits", value: json.Number("77"), want: 0o077},
		{name: "not octal", value: "0089", want: 0o027, err: `umask = "0089" is not valid`},
		{name: "beyond 0777", value: "1777", want: 0o027, err: "from \"0000\" to \"0777\""},
		{name: "not a string", value: true, want: 0o027, err: "string of octal digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pfe.Plan{}
			if tc.value != nil {
				p.Global.Options = []pfe.Option{{Name: "umask", Value: tc.value}}
			}
			got, err := ChildUmask(p)
			if got != tc.want {
				t.Errorf("ChildUmask = %#o, want %#o", got, tc.want)
			}
			if (err != nil) != (tc.err != "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error = %v, want one containing %q", err, tc.err)
			}
		})
	}
}
