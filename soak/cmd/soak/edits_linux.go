package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// editKind is one kind of config edit.
type editKind int

const (
	editValid     editKind = iota // motd_text changes
	editBadJSON                   // the profile file is cut short
	editBadModule                 // the profile names a module that is not installed
	editKinds
)

func (k editKind) String() string {
	return [...]string{"valid", "bad JSON", "unknown module"}[k]
}

// soakProfile builds the custom profile "soak" from the built-in development
// profile, plus mod_motd whose motd_text the valid edits change.
func soakProfile(configDir string) (map[string]any, error) {
	src := filepath.Join(configDir, "profiles", "development", "profile.json")
	b, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("read the base profile: %w", err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode %s: %w", src, err)
	}
	p["name"] = "soak"
	p["description"] = "The development profile plus mod_motd, edited by the soak"
	global, _ := p["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
		p["global"] = global
	}
	settings, _ := global["settings"].(map[string]any)
	if settings == nil {
		settings = map[string]any{}
		global["settings"] = settings
	}
	global["modules"] = []any{"motd"}
	return p, nil
}

// writeEdit writes the profile for one edit atomically (temp file + rename in
// the same directory), so the watcher never sees half a file by accident.
func writeEdit(path string, p map[string]any, kind editKind, motd string) error {
	global := p["global"].(map[string]any)
	global["settings"].(map[string]any)["motd_text"] = motd
	global["modules"] = []any{"motd"}
	if kind == editBadModule {
		global["modules"] = []any{"motd", "soak_no_such_module"}
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if kind == editBadJSON {
		b = b[:len(b)/2]
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}

// luacCheck runs `luac5.4 -p` on a rendered config.
func luacCheck(path string) error {
	out, err := exec.Command("luac5.4", "-p", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("luac5.4 -p %s: %v: %s", path, err, bytes.TrimSpace(out))
	}
	return nil
}

// soakEdits: N config edits, valid and invalid, under client traffic; see about["edits"].
func soakEdits(r *runner, sc scenario, res *result) error {
	stop := deadline(time.Now().Add(sc.Limit - 20*time.Second))
	rng := rand.New(rand.NewSource(r.opt.Seed))
	prof, err := soakProfile(filepath.Join(r.opt.Root, "config"))
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(r.tmp, "server-")
	if err != nil {
		return err
	}
	profDir := filepath.Join(dir, "custom", "profiles", "soak")
	if err := os.MkdirAll(profDir, 0o755); err != nil {
		return err
	}
	profPath := filepath.Join(profDir, "profile.json")
	lastValid := "soak edit 0"
	if err := writeEdit(profPath, prof, editValid, lastValid); err != nil {
		return err
	}
	s, err := r.startReady(serverConfig{Dir: dir, Env: map[string]string{"PROSODY_PROFILE": "soak"}}, 60*time.Second)
	if err != nil {
		return err
	}
	defer s.stopAfter(res, "the edits")
	c, err := s.chatting(r.clients, [2]account{{"carol@localhost", "soak-carol-pw"}, {"dave@localhost", "soak-dave-pw"}})
	if err != nil {
		return err
	}
	good, err := os.ReadFile(s.renderedPath())
	if err != nil {
		return err
	}

	counts := map[editKind]int{}
	outcomes := map[string]int{}
	var reloadTimes []time.Duration
	invalidApplied, validLost, luacFail := 0, 0, 0
	for i := 1; i <= sc.N && !stop.expired(); i++ {
		kind := editValid
		if rng.Intn(5) >= 3 { // 60% valid, 40% invalid split between the two kinds
			kind = editBadJSON + editKind(rng.Intn(2))
		}
		st, _, err := s.status()
		if err != nil {
			return err
		}
		var prevAt time.Time
		if st.LastReload != nil {
			prevAt = st.LastReload.At
		}
		motd := fmt.Sprintf("soak edit %d", i)
		t0 := time.Now()
		if err := writeEdit(profPath, prof, kind, motd); err != nil {
			return err
		}
		counts[kind]++
		var outcome, reloadErr string
		err = s.poll(20*time.Second, 20*time.Millisecond, fmt.Sprintf("the reload of edit %d (%s)", i, kind), func() bool {
			st, _, err := s.status()
			if err != nil || st.LastReload == nil || !st.LastReload.At.After(prevAt) {
				return false
			}
			outcome, reloadErr = st.LastReload.Outcome, st.LastReload.Error
			return true
		})
		if err != nil {
			return fmt.Errorf("%w\nentrypoint stderr (tail):\n%s", err, tail(s.Stderr(), 3000))
		}
		reloadTimes = append(reloadTimes, time.Since(t0))
		outcomes[outcome]++
		if err := luacCheck(s.renderedPath()); err != nil {
			luacFail++
			res.problem("edit %d (%s): the rendered config fails: %v", i, kind, err)
		}
		rendered, err := os.ReadFile(s.renderedPath())
		if err != nil {
			return err
		}
		switch {
		case kind != editValid:
			if outcome != "refused" || !bytes.Equal(rendered, good) {
				invalidApplied++
				res.problem("edit %d (%s): outcome %q (want refused), rendered config changed: %v",
					i, kind, outcome, !bytes.Equal(rendered, good))
			}
		default:
			want := fmt.Sprintf("%q", motd)
			if (outcome != "applied" && outcome != "unchanged") || !strings.Contains(string(rendered), want) {
				validLost++
				res.problem("edit %d (valid): outcome %q (%s), rendered config has %s: %v",
					i, outcome, reloadErr, want, strings.Contains(string(rendered), want))
			}
			good, lastValid = rendered, motd
		}
		res.Done++
	}

	// The running Prosody holds the last valid edit: ask it, not the file.
	live, err := s.admin(`config:get("*", "motd_text")`)
	switch {
	case err != nil:
		res.problem("ask prosody for motd_text: %v", err)
	default:
		got := live.Message + " " + strings.Join(live.Output, " ")
		res.figure("prosody's motd_text after the last edit (admin shell)", fmt.Sprintf("%q", strings.TrimSpace(got)),
			fmt.Sprintf("contains %q", lastValid), strings.Contains(got, lastValid))
	}
	_, offline := c.counts()
	sum, err := c.finish(20 * time.Second)
	if err != nil {
		return err
	}
	med, p99, _ := durations(reloadTimes)
	res.figure("edits (valid / bad JSON / unknown module)", fmt.Sprintf("%d (%d / %d / %d)", res.Done,
		counts[editValid], counts[editBadJSON], counts[editBadModule]), fmt.Sprint(sc.N), res.Done == sc.N)
	res.figure("reload outcomes", fmt.Sprint(outcomes), "applied = valid, refused = invalid",
		outcomes["refused"] == counts[editBadJSON]+counts[editBadModule])
	res.figure("edit → reload recorded, median / p99", ms(med)+" / "+ms(p99), "(measured)", true)
	res.figure("rendered configs failing luac5.4 -p", fmt.Sprint(luacFail), "0", luacFail == 0)
	res.figure("invalid edits applied", fmt.Sprint(invalidApplied), "0", invalidApplied == 0)
	res.figure("valid edits lost", fmt.Sprint(validLost), "0", validLost == 0)
	res.figure("client disconnects", fmt.Sprint(max(offline, sum.Disconnects)), "0", offline == 0 && sum.Disconnects == 0)
	res.figure("messages sent → received", fmt.Sprintf("%d → %d", sum.Sent, sum.Received), "all, > 0",
		sum.Sent > 0 && sum.Received == sum.Sent && len(sum.Missing) == 0)
	return nil
}
