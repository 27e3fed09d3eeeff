package settings

import (
	"net"
	"strconv"
)

// C2SProbeAddr is where a local client (the readiness probe) reaches c2s: loopback unless the
// operator bound Prosody to specific addresses only.
func (st *Settings) C2SProbeAddr() string {
	host := "127.0.0.1"
	if len(st.Interfaces) > 0 {
		host = ""
		for _, i := range st.Interfaces {
			switch i {
			case "*", "127.0.0.1":
				host = "127.0.0.1"
			case "::", "::1":
				if host == "" {
					host = "::1"
				}
			}
		}
		if host == "" {
			host = st.Interfaces[0]
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(st.C2SPort))
}
