package supervise

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// Credential is the identity the child runs with: uid and gid set, every
// supplementary group dropped, and HOME set to Home when Home is not "".
type Credential struct {
	UID, GID uint32
	Home     string
}

// LookupUser reads name's uid, gid and home from the user database
// (/etc/passwd, /etc/group).
func LookupUser(name string) (*Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %q not found: %w (create it, or run the entrypoint as the user Prosody should run as)", name, err)
	}
	uid, err := parseID("uid", u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	gid, err := parseID("gid", u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	return &Credential{UID: uid, GID: gid, Home: u.HomeDir}, nil
}

// PrivilegeDrop decides who the child runs as, by the rule "started as root:
// drop to userName; started as non-root: run as itself".
//
// As root it returns userName's credential with uidOverride and gidOverride
// (decimal ids; "" keeps the user's) applied; when both overrides are given
// the user need not exist (Home is then ""). As non-root it returns nil (the
// child keeps the entrypoint's identity) unless an override asks for a
// different id, which is an error since only root can switch.
func PrivilegeDrop(userName, uidOverride, gidOverride string) (*Credential, error) {
	return privilegeDrop(os.Geteuid(), os.Getegid(), userName, uidOverride, gidOverride)
}

func privilegeDrop(euid, egid int, userName, uidOverride, gidOverride string) (*Credential, error) {
	var uid, gid *uint32
	if uidOverride != "" {
		v, err := parseID("uid override", uidOverride)
		if err != nil {
			return nil, err
		}
		uid = &v
	}
	if gidOverride != "" {
		v, err := parseID("gid override", gidOverride)
		if err != nil {
			return nil, err
		}
		gid = &v
	}
	if euid != 0 {
		if uid != nil && int(*uid) != euid {
			return nil, fmt.Errorf("cannot run the child as uid %d: the entrypoint runs as uid %d and only root can switch (unset the uid override or start as root)", *uid, euid)
		}
		if gid != nil && int(*gid) != egid {
			return nil, fmt.Errorf("cannot run the child as gid %d: the entrypoint runs as gid %d and only root can switch (unset the gid override or start as root)", *gid, egid)
		}
		return nil, nil
	}
	var cred *Credential
	if uid != nil && gid != nil {
		cred = &Credential{UID: *uid, GID: *gid}
		if c, err := LookupUser(userName); err == nil {
			cred.Home = c.Home
		}
	} else {
		c, err := LookupUser(userName)
		if err != nil {
			return nil, err
		}
		cred = c
		if uid != nil {
			cred.UID = *uid
		}
		if gid != nil {
			cred.GID = *gid
		}
	}
	if cred.UID == 0 {
		return nil, fmt.Errorf("refusing to run the child as uid 0: Prosody refuses root; choose an unprivileged user or uid")
	}
	return cred, nil
}

// parseID parses a decimal uid or gid.
func parseID(what, s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not valid: want a decimal number from 0 to 4294967295", what, s)
	}
	return uint32(v), nil
}
