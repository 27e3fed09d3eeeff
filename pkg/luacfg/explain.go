package luacfg

import (
	"fmt"
	"io"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// WriteExplanations prints what `entrypoint explain` found, for a person:
// one line per place (IN or OUT, kind, name, section), the value as the
// rendered file writes it, and every reason.
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
	}
}
