package supervise

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// Credential is the identity the child runs with: uid and gid set, the
// supplementary groups exactly Groups (nil or empty: none; whatever groups
// the entrypoint has are never handed down), and HOME set to Home when Home
// is not "".
type Credential struct {
	UID, GID uint32
	Groups   []uint32
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

// supplementaryGroups are the gids of the groups u is a member of in
// /etc/group, without primary; nil when there are none.
func supplementaryGroups(u *user.User, primary uint32) ([]uint32, error) {
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("read its groups: %w", err)
	}
	var groups []uint32
	for _, id := range ids {
		g, err := parseID("gid", id)
		if err != nil {
			return nil, err
		}
		if g != primary {
			groups = append(groups, g)
		}
	}
	return groups, nil
}

// lookupGroup reads a group's gid from the group database.
func lookupGroup(name string) (uint32, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("group %q not found: %w (create it, or give a numeric gid)", name, err)
	}
	return parseID("gid", g.Gid)
}

// isNumeric reports whether s is a decimal id rather than a name.
func isNumeric(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// RunAs decides who a plain-init child runs as, as gosu, su-exec or setpriv
// would: userSpec and groupSpec are each a name, a decimal id, or "".
//
//   - Both "": nil, the entrypoint's own identity.
//   - A user (name, or a uid found in /etc/passwd) without a group: its uid,
//     primary gid, supplementary groups (/etc/group) and home.
//   - A uid not in /etc/passwd needs groupSpec: nothing would say its group,
//     and the entrypoint's (root's) must not stay.
//   - With groupSpec: that gid and no supplementary groups; without
//     userSpec the uid stays the entrypoint's.
//
// uid 0 is refused (leave PROSODY_UID unset to run as root). Only root can
// switch: as any other user, a spec naming a different uid or gid is an
// error, and one naming its own ids gives nil.
func RunAs(userSpec, groupSpec string) (*Credential, error) {
	if userSpec == "" && groupSpec == "" {
		return nil, nil
	}
	cred := &Credential{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	if userSpec != "" {
		var u *user.User
		var err error
		if isNumeric(userSpec) {
			uid, _ := parseID("uid", userSpec)
			cred.UID = uid
			if u, err = user.LookupId(userSpec); err != nil {
				u = nil
				if groupSpec == "" {
					return nil, fmt.Errorf("uid %s has no entry in /etc/passwd, so it has no group: set PROSODY_GID too, or give a user name", userSpec)
				}
			}
		} else if u, err = user.Lookup(userSpec); err != nil {
			return nil, fmt.Errorf("user %q not found in /etc/passwd: %w (give an existing user name or a numeric uid)", userSpec, err)
		}
		if u != nil {
			if cred.UID, err = parseID("uid", u.Uid); err != nil {
				return nil, fmt.Errorf("user %q: %w", userSpec, err)
			}
			if cred.GID, err = parseID("gid", u.Gid); err != nil {
				return nil, fmt.Errorf("user %q: %w", userSpec, err)
			}
			cred.Home = u.HomeDir
			if groupSpec == "" {
				if cred.Groups, err = supplementaryGroups(u, cred.GID); err != nil {
					return nil, fmt.Errorf("user %q: %w", userSpec, err)
				}
			}
		}
		if cred.UID == 0 {
			return nil, fmt.Errorf("user %q is uid 0 (root): leave PROSODY_UID unset to run the child as root", userSpec)
		}
	}
	if groupSpec != "" {
		var err error
		if isNumeric(groupSpec) {
			cred.GID, err = parseID("gid", groupSpec)
		} else {
			cred.GID, err = lookupGroup(groupSpec)
		}
		if err != nil {
			return nil, err
		}
	}
	if euid := os.Geteuid(); euid != 0 {
		if int(cred.UID) != euid || int(cred.GID) != os.Getegid() || len(cred.Groups) > 0 {
			return nil, fmt.Errorf("cannot run the child as uid %d gid %d: the entrypoint runs as uid %d and only root can switch (unset PROSODY_UID and PROSODY_GID, or start as root)", cred.UID, cred.GID, euid)
		}
		return nil, nil
	}
	return cred, nil
}

// PrivilegeDrop decides who the child runs as, by the rule "started as root:
// drop to userName; started as non-root: run as itself".
//
// As root it returns the credential of the user uidOverride names (a user
// name, or a uid found in /etc/passwd), or else of userName: that user's uid,
// primary gid, supplementary groups (/etc/group) and home, so a user name
// alone brings its groups, as in RunAs. A uidOverride not in /etc/passwd
// keeps userName's gid and home and gets no supplementary groups.
// gidOverride (a decimal gid or a group name) replaces the gid and leaves no
// supplementary groups. When both overrides are given the user need not
// exist (Home is then ""). As non-root it returns nil (the child keeps the
// entrypoint's identity) unless an override asks for a different id, which
// is an error since only root can switch.
func PrivilegeDrop(userName, uidOverride, gidOverride string) (*Credential, error) {
	return privilegeDrop(os.Geteuid(), os.Getegid(), userName, uidOverride, gidOverride)
}

func privilegeDrop(euid, egid int, userName, uidOverride, gidOverride string) (*Credential, error) {
	var uid, gid *uint32
	var who *user.User // the user whose groups the child gets, when known
	if uidOverride != "" {
		var err error
		if isNumeric(uidOverride) {
			who, _ = user.LookupId(uidOverride) // not in /etc/passwd: a bare uid
		} else if who, err = user.Lookup(uidOverride); err != nil {
			return nil, fmt.Errorf("user %q not found: %w (create it, or run the entrypoint as the user Prosody should run as)", uidOverride, err)
		}
		if who != nil {
			uidOverride = who.Uid
		}
		v, err := parseID("uid override", uidOverride)
		if err != nil {
			return nil, err
		}
		uid = &v
	}
	if gidOverride != "" {
		if !isNumeric(gidOverride) {
			g, err := lookupGroup(gidOverride)
			if err != nil {
				return nil, err
			}
			gidOverride = strconv.FormatUint(uint64(g), 10)
		}
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
	switch {
	case who != nil:
		c, err := userCredential(who)
		if err != nil {
			return nil, err
		}
		cred = c
	case uid != nil && gid != nil:
		cred = &Credential{UID: *uid, GID: *gid}
		if c, err := LookupUser(userName); err == nil {
			cred.Home = c.Home
		}
	default:
		u, err := user.Lookup(userName)
		if err != nil {
			return nil, fmt.Errorf("user %q not found: %w (create it, or run the entrypoint as the user Prosody should run as)", userName, err)
		}
		if cred, err = userCredential(u); err != nil {
			return nil, err
		}
		if uid != nil { // a uid of no user: userName's gid, none of its groups
			cred.UID, cred.Groups = *uid, nil
		}
	}
	if gid != nil {
		cred.GID, cred.Groups = *gid, nil
	}
	if cred.UID == 0 {
		return nil, fmt.Errorf("refusing to run the child as uid 0: Prosody refuses root; choose an unprivileged user or uid")
	}
	return cred, nil
}

// userCredential is u's uid, primary gid, supplementary groups and home.
func userCredential(u *user.User) (*Credential, error) {
	uid, err := parseID("uid", u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", u.Username, err)
	}
	gid, err := parseID("gid", u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", u.Username, err)
	}
	groups, err := supplementaryGroups(u, gid)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", u.Username, err)
	}
	return &Credential{UID: uid, GID: gid, Groups: groups, Home: u.HomeDir}, nil
}

// parseID parses a decimal uid or gid.
func parseID(what, s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not valid: want a decimal number from 0 to 4294967295", what, s)
	}
	return uint32(v), nil
}
