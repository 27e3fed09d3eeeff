// Package listeners holds Prosody's listening sockets in the entrypoint, so
// that a restart of Prosody refuses no connection: the entrypoint binds them
// (as root, before any Prosody runs) and hands them to every Prosody it
// starts as inherited descriptors, the systemd socket-activation protocol
// that Prosody 13 reads in net/server_epoll.lua. While no Prosody runs, the
// kernel queues new connections on them; the next Prosody accepts them.
//
// What Prosody 13.0 reads (net/server_epoll.lua, core/portmanager.lua):
// only LISTEN_FDS, the count of descriptors from 3 on. It takes each one's
// local address (getsockname) and uses it when a service listens on that
// interface and port, keyed "address:port" with the interface written as in
// the config ("0.0.0.0" also answers for "*"); any other listener it binds
// itself. It reads neither LISTEN_PID nor LISTEN_FDNAMES. Plan therefore
// keeps only interfaces written the way getsockname prints them.
package listeners

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// Spec is one listening socket of Prosody: a service on one interface and port.
type Spec struct {
	// Service is Prosody's network service name: c2s, c2s_direct_tls, s2s,
	// s2s_direct_tls, http or https. It is the descriptor's LISTEN_FDNAMES name.
	Service string
	// Interface is as Prosody's config writes it: "*" (every IPv4 address),
	// "::" (every IPv6 address) or an IP address in its canonical form.
	Interface string
	Port      int
}

// Key is how Prosody looks an inherited socket up: interface:port.
func (s Spec) Key() string { return s.Interface + ":" + strconv.Itoa(s.Port) }

// Address is the socket's address for net.Dial and messages: 0.0.0.0:5222, [::]:5222.
func (s Spec) Address() string {
	host := s.Interface
	if host == "*" {
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, strconv.Itoa(s.Port))
}

// IPv6 reports whether the socket is an IPv6 one.
func (s Spec) IPv6() bool { return strings.Contains(s.Interface, ":") }

// String is "c2s 0.0.0.0:5222".
func (s Spec) String() string { return s.Service + " " + s.Address() }

// service is one of Prosody's network services the entrypoint can hold.
type service struct {
	name        string
	module      string // the module that provides it (modules_disabled turns it off)
	defaultPort int    // 0: listens only when <name>_ports is set
	private     bool   // Prosody's private services default to local_interfaces
	variable    string // the setting that names its port, for messages
}

// services are the listeners the issue names, in LISTEN_FDS order. Prosody's
// other listeners (components, proxy65, legacy_ssl) are left to Prosody.
var services = []service{
	{name: "c2s", module: "c2s", defaultPort: 5222, variable: "PROSODY_C2S_PORT"},
	{name: "c2s_direct_tls", module: "c2s"},
	{name: "s2s", module: "s2s", defaultPort: 5269, variable: "PROSODY_S2S_PORT"},
	{name: "s2s_direct_tls", module: "s2s"},
	{name: "http", module: "http", defaultPort: 5280, private: true, variable: "PROSODY_HTTP_PORT"},
	{name: "https", module: "http", defaultPort: 5281, variable: "PROSODY_HTTPS_PORT"},
}

// Variable is the setting that names the port of service ("" when none does,
// as for the direct-TLS services a custom layer sets).
func Variable(service string) string {
	for _, s := range services {
		if s.name == service {
			return s.variable
		}
	}
	return ""
}

// Plan returns the listeners Prosody opens for p that the entrypoint can hold
// for it, in LISTEN_FDS order (service, then interface, then port), each
// interface:port once. It follows portmanager's rules: ports from
// <service>_ports (or the default port), interfaces from
// <service>_interfaces, then (private services: http) local_interfaces or
// 127.0.0.1 and ::1, then interfaces, then "*" and "::" (use_ipv4 and
// use_ipv6 false drop one). The http services count only when mod_http is in
// the plan's global modules; a service whose module is in modules_disabled is
// left out. An interface Prosody would not match by getsockname's text (an
// IPv6 address not in canonical form, an IPv4-mapped one) is left out too:
// Prosody binds it itself.
func Plan(p *pfe.Plan) []Spec {
	opts := p.Global.OptionMap()
	disabled := map[string]bool{}
	for _, m := range p.Global.Disabled {
		disabled[m.Name] = true
	}
	var out []Spec
	seen := map[string]bool{}
	for _, svc := range services {
		if disabled[svc.module] {
			continue
		}
		if svc.module == "http" && !pfe.HasGlobalModule(p, "http") && opts["http_ports"] == nil && opts["https_ports"] == nil {
			continue
		}
		ports := intList(opts[svc.name+"_ports"])
		if opts[svc.name+"_ports"] == nil && svc.defaultPort != 0 {
			ports = []int{svc.defaultPort}
		}
		for _, ifc := range interfaces(opts, svc) {
			if !canonical(ifc) {
				continue
			}
			for _, port := range ports {
				s := Spec{Service: svc.name, Interface: ifc, Port: port}
				if seen[s.Key()] || (ifc == "0.0.0.0" && seen["*:"+strconv.Itoa(port)]) || (ifc == "*" && seen["0.0.0.0:"+strconv.Itoa(port)]) {
					continue // Prosody refuses a second service on the same interface and port
				}
				seen[s.Key()] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// interfaces resolves a service's interfaces as portmanager.activate does.
func interfaces(opts map[string]any, svc service) []string {
	for _, name := range []string{svc.name + "_interfaces", svc.name + "_interface"} {
		if v, ok := opts[name]; ok && v != nil {
			return stringList(v)
		}
	}
	use4, use6 := opts["use_ipv4"] != false, opts["use_ipv6"] != false
	if svc.private {
		if v, ok := opts["local_interfaces"]; ok && v != nil {
			return stringList(v)
		}
		return defaults(use4, use6, "127.0.0.1", "::1")
	}
	for _, name := range []string{"interfaces", "interface"} {
		if v, ok := opts[name]; ok && v != nil {
			return stringList(v)
		}
	}
	return defaults(use4, use6, "*", "::")
}

func defaults(use4, use6 bool, v4, v6 string) []string {
	var out []string
	if use4 {
		out = append(out, v4)
	}
	if use6 {
		out = append(out, v6)
	}
	return out
}

// canonical reports whether Prosody finds an inherited socket bound to ifc
// under the name ifc: "*", or the text getsockname gives for the address.
func canonical(ifc string) bool {
	if ifc == "*" {
		return true
	}
	ip := net.ParseIP(ifc)
	return ip != nil && ip.String() == ifc && (ip.To4() == nil) == strings.Contains(ifc, ":")
}

// stringList reads a string or a list of strings (a Lua set is written as a list).
func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return slices.Clone(x)
	}
	return nil
}

// intList reads a port or a list of ports, as numbers or numeric strings
// (Prosody applies tonumber); anything else is skipped, as Prosody skips it.
func intList(v any) []int {
	one := func(e any) (int, bool) {
		switch x := e.(type) {
		case int64:
			return int(x), x > 0 && x < 65536
		case int:
			return x, x > 0 && x < 65536
		case float64:
			n := int(x)
			return n, float64(n) == x && n > 0 && n < 65536
		case string:
			n, err := strconv.Atoi(strings.TrimSpace(x))
			return n, err == nil && n > 0 && n < 65536
		}
		return 0, false
	}
	var list []any
	if l, ok := v.([]any); ok {
		list = l
	} else if v != nil {
		list = []any{v}
	}
	var out []int
	for _, e := range list {
		if n, ok := one(e); ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Names is the LISTEN_FDNAMES value for specs: their service names joined by ":".
func Names(specs []Spec) string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Service
	}
	return strings.Join(names, ":")
}

// Env is the socket-activation environment for specs, passed as descriptors
// 3, 4, … in order: LISTEN_FDS and LISTEN_FDNAMES. LISTEN_PID is not set:
// Prosody does not read it, and sd_listen_fds(3) in anything Prosody starts
// then ignores the descriptors, as it should (they are Prosody's). Nil when
// specs is empty.
func Env(specs []Spec) []string {
	if len(specs) == 0 {
		return nil
	}
	return []string{"LISTEN_FDS=" + strconv.Itoa(len(specs)), "LISTEN_FDNAMES=" + Names(specs)}
}

// BindError is a listener the entrypoint could not bind because the port is
// taken or needs a privilege it lacks: a configuration problem, found before
// Prosody starts.
type BindError struct {
	Spec Spec
	Err  error
}

func (e *BindError) Error() string {
	what := fmt.Sprintf("listen on %s for Prosody's %s service", e.Spec.Address(), e.Spec.Service)
	if v := Variable(e.Spec.Service); v != "" {
		what += " (" + v + ")"
	}
	return fmt.Sprintf("%s: %v: %s", what, e.Err, hint(e))
}

func (e *BindError) Unwrap() error { return e.Err }
