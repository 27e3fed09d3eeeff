package main

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
	"github.com/prosody-pfe/prosody-pfe/pkg/health"
)

// bootstrapAdmins creates each local admin account that does not exist yet,
// with PROSODY_ADMIN_PASSWORD, once Prosody is ready. An existing account's
// password is never changed (Prosody's user:create refuses "User exists").
// The password never reaches a log: adminsock errors name only the command.
func bootstrapAdmins(ctx context.Context, s *state, mon *health.Monitor, log *zap.Logger) {
	if !s.st.AdminPassword.IsSet() || len(s.st.Admins) == 0 {
		return
	}
	log = log.Named("admins")
	if !hasAdminShell(s.plan) {
		log.Error("PROSODY_ADMIN_PASSWORD is set but the admin shell is off; enable the admin/shell feature (PROSODY_FEATURES_ADMIN_SHELL=true) to create admin accounts")
		return
	}
	if err := mon.WaitReady(ctx); err != nil {
		return
	}
	served := map[string]bool{}
	for _, d := range s.plan.Domains {
		served[d] = true
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := adminsock.Dial(cctx, adminSocket(s))
	if err != nil {
		log.Error("connect to the admin socket to create admin accounts", zap.Error(err))
		return
	}
	defer conn.Close()
	for _, jid := range s.st.Admins {
		_, domain, ok := strings.Cut(jid, "@")
		if !ok || !served[domain] {
			continue // a remote admin has no local account
		}
		res, err := conn.Exec(cctx, "user:create("+adminsock.LuaQuote(jid)+", "+
			adminsock.LuaQuote(s.st.AdminPassword.Reveal())+", \"prosody:admin\")")
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
