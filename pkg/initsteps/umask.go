package initsteps

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// DefaultUmask is the umask Prosody documents for its `umask` option when
// the config does not set it: files it creates are not world-readable.
const DefaultUmask = 0o027

// ChildUmask is the umask Prosody runs with: the config's global `umask`
// option, or DefaultUmask when it has none. Prosody 13's server never applies
// the option itself (util/startup.lua defines posix_umask but startup.prosody
// never calls it; only prosodyctl applies it, in startup.switch_user), so its
// files would get the entrypoint's umask, 022 in a container, and account
// files with password hashes would be world-readable: the supervisor gives
// the child this one instead (supervise.Config.Umask). Prosody reads the
// option as a string of octal digits ("0027"); a Lua number is read as the
// digits it prints (27 is 0027), as pposix does. The error, for a value that
// is not octal digits or sets bits beyond 0777, is a configuration error;
// the umask returned with it is DefaultUmask, never a laxer one.
func ChildUmask(p *pfe.Plan) (uint32, error) {
	var v any
	if p != nil {
		v = pfe.GlobalOption(p, "umask")
	}
	var digits string
	switch x := v.(type) {
	case nil:
		return DefaultUmask, nil
	case string:
		digits = x
	case json.Number:
		digits = x.String()
	case int, int64, uint32, uint64:
		digits = fmt.Sprint(x)
	case float64:
		digits = strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return DefaultUmask, fmt.Errorf("option umask = %v is not valid: want a string of octal digits such as \"0027\"", v)
	}
	m, err := strconv.ParseUint(digits, 8, 32)
	if err != nil || m > 0o777 {
		return DefaultUmask, fmt.Errorf("option umask = %q is not valid: want a string of octal digits from \"0000\" to \"0777\", such as \"0027\"", digits)
	}
	return uint32(m), nil
}
