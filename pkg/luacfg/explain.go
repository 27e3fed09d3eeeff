package luacfg

import (
	"fmt"
	"io"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// WriteExplanations prints what `entrypoint explain` found, for a person:
// one line per place (IN or OUT, kind, name, section), the value as the
// rendered file writes it, every reason, the options a feature runs with,
// and its notes.
func WriteExplanations(w io.Writer, ex []pfe.Explanation) {
	for _, e := range ex {
		state := "OUT"
		if e.In {
			state = "IN "
		}
		where := e.Section
		if where == "" {
			where = "plan"
		}
		fmt.Fprintf(w, "%s %s %s in %s\n", state, e.Kind, e.Name, where)
		if e.Value != nil {
			if lit, err := Value(e.Value); err == nil {
				fmt.Fprintf(w, "    value: %s\n", lit)
			}
		}
		for _, why := range e.Why {
			fmt.Fprintf(w, "    because: %s\n", why)
		}
		for _, o := range e.Options {
			lit, _ := Value(o.Value)
			fmt.Fprintf(w, "    with: %s = %s\n", o.Name, lit)
		}
		for _, n := range e.Notes {
			fmt.Fprintf(w, "    note: %s\n", n)
		}
	}
}
