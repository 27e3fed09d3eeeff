package health

import (
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"

	"go.uber.org/zap"
)

// statusAccess decides who reads /status, which names hosts, process ids, exit
// codes and certificate dates: a client on loopback (the container itself,
// `docker exec`, `kubectl port-forward`), or one that sends
// "Authorization: Bearer <token>" with token, the configured status token
// (compared in constant time). token "" grants nobody beyond loopback. It is
// pure: remoteAddr is http.Request.RemoteAddr ("ip:port").
//
// It answers http.StatusOK to let the request through, else the code to refuse
// it with: 401 when a token exists (ask for it), 403 when none does (no
// credential can help).
func statusAccess(remoteAddr, authorization, token string) int {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil && ap.Addr().Unmap().IsLoopback() {
		return http.StatusOK
	}
	if token == "" {
		return http.StatusForbidden
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(cred)), []byte(token)) == 1 {
		return http.StatusOK
	}
	return http.StatusUnauthorized
}

// SetStatusToken replaces the bearer token that grants /status to clients
// beyond loopback (Config.StatusToken), from the next request on: a rotated
// PROSODY_STATUS_TOKEN_FILE takes effect at the reload it triggers, and the
// old token stops working. "" leaves /status to loopback clients. The token is
// never logged; a change is, without it.
func (m *Monitor) SetStatusToken(token string) {
	if old := m.token.Swap(&token); *old != token {
		m.log.Info("status token replaced", zap.Bool("set", token != ""))
	}
}

// statusRefusal is the body of a refused /status: how to get access.
const statusRefusal = "/status (hosts, process ids, exit codes, certificate dates) is served to loopback clients, " +
	"and to others only with \"Authorization: Bearer <token>\" where the token is PROSODY_STATUS_TOKEN " +
	"(or the file named by PROSODY_STATUS_TOKEN_FILE) of the server; /livez, /readyz and /metrics are open to all"
