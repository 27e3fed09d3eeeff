package initsteps

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// BootstrapAdmins creates each local admin account that does not exist yet,
// with PROSODY_ADMIN_PASSWORD, once waitReady says Prosody is ready. An
// existing account's password is never changed (Prosody's user:create
// refuses "User exists"). The password never reaches a log: adminsock errors
// name only the command. Problems are logged, not returned: a missing admin
// account must not stop the server.
func BootstrapAdmins(ctx context.Context, s *State, waitReady func(context.Context) error) {
	if !s.Settings.AdminPassword.IsSet() || len(s.Settings.Admins) == 0 {
		return
	}
	log := s.Log.Named("admins")
	if !pfe.HasGlobalModule(s.Plan, "admin_shell") {
		log.Error("PROSODY_ADMIN_PASSWORD is set but the admin shell is off; enable the admin/shell feature (PROSODY_FEATURES_ADMIN_SHELL=true) to create admin accounts")
		return
	}
	if err := waitReady(ctx); err != nil {
		return
	}
	served := map[string]bool{}
	for _, d := range s.Plan.Domains {
		served[d] = true
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := adminsock.Dial(cctx, s.AdminSocket())
	if err != nil {
		log.Error("connect to the admin socket to create admin accounts", zap.Error(err))
		return
	}
	defer conn.Close()
	for _, jid := range s.Settings.Admins {
		_, domain, ok := strings.Cut(jid, "@")
		if !ok || !served[domain] {
			continue // a remote admin has no local account
		}
		res, err := conn.Exec(cctx, "user:create("+adminsock.LuaQuote(jid)+", "+
			adminsock.LuaQuote(s.Settings.AdminPassword.Reveal())+", \"prosody:admin\")")
		switch {
		case err != nil:
			log.Error("create admin account", zap.String("jid", jid), zap.Error(err))
			return
		case res.OK:
			log.Info("admin account created", zap.String("jid", jid))
		case strings.Contains(res.Message, "User exists"):
			log.Info("admin account exists; password left as it is", zap.String("jid", jid))
		default:
			log.Error("create admin account", zap.String("jid", jid), zap.String("prosody", res.Message))
		}
	}
}
