package adminsock

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// CommandError is returned by the helpers that return a value (ModuleList, ServerVersion)
// when Prosody answered the command with an error or with something they cannot read. The
// connection is still usable. Test for it with errors.As.
type CommandError struct {
	Command string // the admin shell command that was sent
	Message string // Prosody's answer, or what was wrong with it
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("prosody admin command %s failed: %s", e.Command, e.Message)
}

// ConfigReload runs config:reload(): Prosody re-reads its config file and applies what a reload
// applies (see Prosody's docs; modules and hosts are not loaded or unloaded). OK false means the
// file was refused (Message then holds the parser error with file and line) and Prosody keeps
// its previous config.
func (c *Conn) ConfigReload(ctx context.Context) (Result, error) {
	return c.Exec(ctx, "config:reload()")
}

// ModuleLoad runs module:load(name[, host]). An empty host means every VirtualHost (or the
// global host for a global module); "*" means the global host. Loading a loaded module is OK
// ("Module already loaded").
func (c *Conn) ModuleLoad(ctx context.Context, name, host string) (Result, error) {
	return c.Exec(ctx, moduleCall("load", name, host))
}

// ModuleUnload runs module:unload(name[, host]). An empty host means every host where the
// module is loaded; "*" means the global host.
func (c *Conn) ModuleUnload(ctx context.Context, name, host string) (Result, error) {
	return c.Exec(ctx, moduleCall("unload", name, host))
}

// HostActivate runs host:activate(host): it starts a VirtualHost or Component that is in the
// current config (run ConfigReload first after adding it) but not yet active.
func (c *Conn) HostActivate(ctx context.Context, host string) (Result, error) {
	return c.Exec(ctx, "host:activate("+LuaQuote(host)+")")
}

// HostDeactivate runs host:deactivate(host): it stops a host and disconnects its sessions.
func (c *Conn) HostDeactivate(ctx context.Context, host string) (Result, error) {
	return c.Exec(ctx, "host:deactivate("+LuaQuote(host)+")")
}

// ModuleList returns the sorted names of the modules loaded on host ("*" for the global host),
// from module:list(host). An unknown host gives a *CommandError.
func (c *Conn) ModuleList(ctx context.Context, host string) ([]string, error) {
	if host == "" {
		return nil, fmt.Errorf("list prosody modules: empty host name (use \"*\" for the global host)")
	}
	cmd := "module:list(" + LuaQuote(host) + ")"
	res, err := c.Exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if !res.OK {
		return nil, &CommandError{Command: cmd, Message: res.Message}
	}
	return parseModuleList(cmd, res.Output)
}

// LoadedModules is what Prosody has loaded for host: the modules of the
// global host and of host itself, as a set. A host Prosody does not know (not
// active) has only the global ones; any other error is returned.
func (c *Conn) LoadedModules(ctx context.Context, host string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, h := range []string{"*", host} {
		mods, err := c.ModuleList(ctx, h)
		var cerr *CommandError
		switch {
		case h == host && errors.As(err, &cerr):
			// The host is not active: nothing is loaded on it.
		case err != nil:
			return nil, fmt.Errorf("list the modules of %s: %w", h, err)
		}
		for _, m := range mods {
			set[m] = true
		}
	}
	return set, nil
}

// LoadedModulesOf is LoadedModules for several hosts in one command (one round trip on the
// socket, module:list with the hosts as a table): for each host of hosts, the modules of the
// global host and of the host itself, as a set. A host Prosody does not know (not active) has
// only the global ones; an empty host name is refused before anything is sent.
func (c *Conn) LoadedModulesOf(ctx context.Context, hosts []string) (map[string]map[string]bool, error) {
	var cmd strings.Builder
	cmd.WriteString(`module:list({"*"`)
	for _, h := range hosts {
		if h == "" {
			return nil, fmt.Errorf("list prosody modules: empty host name (use \"*\" for the global host)")
		}
		cmd.WriteString(", " + LuaQuote(h))
	}
	cmd.WriteString("})")
	res, err := c.Exec(ctx, cmd.String())
	if err != nil {
		return nil, err
	}
	if !res.OK {
		return nil, &CommandError{Command: "module:list", Message: res.Message}
	}
	lists, err := parseModuleLists(res.Output)
	if err != nil {
		return nil, err
	}
	global, ok := lists["*"]
	if !ok {
		return nil, &CommandError{Command: "module:list", Message: "no list for the global host"}
	}
	out := make(map[string]map[string]bool, len(hosts))
	for _, h := range hosts {
		set := make(map[string]bool, len(global)+len(lists[h]))
		for _, m := range global {
			set[m] = true
		}
		for _, m := range lists[h] { // nil for a host Prosody does not know
			set[m] = true
		}
		out[h] = set
	}
	return out, nil
}

// parseModuleLists reads the output of module:list for several hosts: for each host a header
// line "host:" ("Global:" for "*"), then its modules as parseModuleList reads them. A host
// that is "Host not found" is left out of the map.
func parseModuleLists(lines []string) (map[string][]string, error) {
	out := map[string][]string{}
	for i := 0; i < len(lines); {
		header := lines[i]
		if strings.HasPrefix(header, " ") || !strings.HasSuffix(header, ":") {
			return nil, &CommandError{Command: "module:list", Message: fmt.Sprintf("unexpected line %q where a host header belongs", header)}
		}
		host := strings.TrimSuffix(header, ":")
		if host == "Global" { // Prosody's name for "*"; a host name is lowercase
			host = "*"
		}
		j := i + 1
		for j < len(lines) && (lines[j] == "" || strings.HasPrefix(lines[j], " ")) {
			j++
		}
		mods, err := parseModuleList("module:list", lines[i:j])
		var cerr *CommandError
		switch {
		case errors.As(err, &cerr) && cerr.Message == "host not found":
		case err != nil:
			return nil, err
		default:
			out[host] = mods
		}
		i = j
	}
	return out, nil
}

// parseModuleList reads the output of module:list(host): a "host:" line, then one module per
// line indented by four spaces, possibly followed by " (warn: …)" or " (error: …)".
func parseModuleList(cmd string, lines []string) ([]string, error) {
	mods := []string{}
	for i, line := range lines {
		if i == 0 && strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " ") {
			continue // the host header
		}
		item := strings.TrimSpace(line)
		switch item {
		case "":
			continue
		case "No modules loaded":
			return mods, nil
		case "Host not found":
			return nil, &CommandError{Command: cmd, Message: "host not found"}
		}
		name, _, _ := strings.Cut(item, " ")
		mods = append(mods, name)
	}
	if len(lines) == 0 {
		return nil, &CommandError{Command: cmd, Message: "no output"}
	}
	sort.Strings(mods)
	return mods, nil
}

// ServerVersion returns Prosody's version string (e.g. "13.0.1") from server:version().
func (c *Conn) ServerVersion(ctx context.Context) (string, error) {
	const cmd = "server:version()"
	res, err := c.Exec(ctx, cmd)
	if err != nil {
		return "", err
	}
	v, found := strings.CutPrefix(res.Message, "OK: ")
	if !res.OK || !found || v == "" {
		return "", &CommandError{Command: cmd, Message: res.Message}
	}
	return v, nil
}

func moduleCall(verb, name, host string) string {
	if host == "" {
		return "module:" + verb + "(" + LuaQuote(name) + ")"
	}
	return "module:" + verb + "(" + LuaQuote(name) + ", " + LuaQuote(host) + ")"
}

// LuaQuote returns s as a double-quoted Lua string literal that evaluates to exactly s: quotes
// and backslashes are escaped and every control byte is written as a three-digit decimal
// escape, so no input can end the literal or inject code.
func LuaQuote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '"' || ch == '\\':
			b.WriteByte('\\')
			b.WriteByte(ch)
		case ch < 0x20 || ch == 0x7f:
			b.WriteByte('\\')
			d := strconv.Itoa(int(ch))
			b.WriteString(strings.Repeat("0", 3-len(d)) + d)
		default:
			b.WriteByte(ch)
		}
	}
	b.WriteByte('"')
	return b.String()
}
