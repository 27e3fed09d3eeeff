package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"

	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
)

// Issue 8 through the entrypoint binary: live config changes applied to real
// Prosody 13 (pid unchanged, effect seen by a real client), refused when bad,
// restarts only for restart-class changes.

// liveProfile is the custom profile the reload tests edit in <dir>/custom.
const liveProfile = "e2e-live"

// layer is the JSON of a profile's global layer.
type layer struct {
	Modules       []string       `json:"modules,omitempty"`
	RemoveModules []string       `json:"remove_modules,omitempty"`
	Settings      map[string]any `json:"settings,omitempty"`
}

// developmentFeatures is the feature list of the built-in development profile.
func developmentFeatures(t *testing.T) []string {
	t.Helper()
	var p struct {
		Features []string `json:"features"`
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, "config", "profiles", "development", "profile.json"))
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil || len(p.Features) == 0 {
		t.Fatalf("read the development profile's features: %v", err)
	}
	return p.Features
}

// profileJSON is a custom profile: the development features plus extra, and g.
func profileJSON(t *testing.T, extra []string, g layer) []byte {
	t.Helper()
	p := map[string]any{
		"name":        liveProfile,
		"description": "the reload tests' profile: development plus what the test changes",
		"features":    append(developmentFeatures(t), extra...),
		"global":      g,
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeAtomic replaces path the way editors and kubectl cp do: temp file, rename.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func profilePath(customDir string) string {
	return filepath.Join(customDir, "profiles", liveProfile, "profile.json")
}

// liveServer starts a development server on the custom profile g (with extra
// features) and waits until it is ready.
func liveServer(t *testing.T, g layer, env map[string]string) *Server {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["PROSODY_WATCH_DEBOUNCE"]; !ok {
		env["PROSODY_WATCH_DEBOUNCE"] = "100ms"
	}
	s := NewServer(t, Options{Profile: liveProfile, Env: env})
	writeAtomic(t, profilePath(filepath.Join(s.Dir, "custom")), profileJSON(t, nil, g))
	s.Start()
	s.WaitReady(20 * time.Second)
	return s
}

// reloads is the total of prosody_pfe_reloads_total for outcome ("" = all).
func reloads(t *testing.T, s *Server, outcome string) float64 {
	t.Helper()
	var labels []string
	if outcome != "" {
		labels = append(labels, `outcome="`+outcome+`"`)
	}
	v, _ := metric(t, s, "prosody_pfe_reloads_total", labels...)
	return v
}

// waitOutcome waits until one more reload than before ended; it fails unless
// it ended with want, and returns /status.
func waitOutcome(t *testing.T, s *Server, before float64, want string) Status {
	t.Helper()
	s.WaitFor(20*time.Second, "a reload to end ("+want+")", func() bool { return reloads(t, s, "") > before })
	st := s.Status()
	if st.LastReload == nil || st.LastReload.Outcome != want {
		t.Fatalf("last reload = %+v, want %s", st.LastReload, want)
	}
	return st
}

// discoFeatures asks the server's disco#info as a logged-in real client.
func discoFeatures(t *testing.T, s *Server, jid, password string) []string {
	t.Helper()
	res := clientScript(t, 30*time.Second, "--port", strconv.Itoa(s.C2S), "--ca", selfSignedCA(s), "disco", jid, password)
	if len(res) != 1 || res[0]["features"] == nil {
		t.Fatalf("disco#info: %v", res)
	}
	var out []string
	for _, f := range res[0]["features"].([]any) {
		out = append(out, f.(string))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// configGet asks the running Prosody, over its admin socket, for an option's
// value in its in-memory config.
func configGet(t *testing.T, s *Server, host, option string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := adminsock.Dial(ctx, filepath.Join(s.Dir, "data", "prosody.sock"))
	if err != nil {
		t.Fatalf("admin socket: %v", err)
	}
	defer conn.Close()
	res, err := conn.Exec(ctx, "config:get("+adminsock.LuaQuote(host)+", "+adminsock.LuaQuote(option)+")")
	if err != nil || !res.OK {
		t.Fatalf("config:get(%q, %q): %v %+v", host, option, err, res)
	}
	return res.Message
}

// An option change is applied by a live reload: same pid, and the running
// Prosody's in-memory config has the new value.
func TestReloadAppliesOptionLive(t *testing.T) {
	t.Parallel()
	s := liveServer(t, layer{Settings: map[string]any{"muc_room_default_history_length": 11}}, nil)
	pid, hash := s.ProsodyPID(), s.Status().ConfigHash
	if got := configGet(t, s, "*", "muc_room_default_history_length"); !strings.Contains(got, "11") {
		t.Fatalf("before the edit Prosody has muc_room_default_history_length %q, want 11", got)
	}
	before := reloads(t, s, "")
	writeAtomic(t, profilePath(filepath.Join(s.Dir, "custom")), profileJSON(t, nil, layer{Settings: map[string]any{"muc_room_default_history_length": 37}}))
	st := waitOutcome(t, s, before, "applied")
	if st.Child.PID != pid || st.ConfigHash == hash {
		t.Fatalf("after the reload pid %d (was %d), config hash %s (was %s): want same pid, new hash", st.Child.PID, pid, st.ConfigHash, hash)
	}
	if got := configGet(t, s, "*", "muc_room_default_history_length"); !strings.Contains(got, "37") {
		t.Fatalf("after the reload Prosody has muc_room_default_history_length %q, want 37", got)
	}
}

// A module added to the profile is loaded live and appears in service
// discovery; removed again, it disappears; Prosody never restarts.
func TestReloadModuleAddedThenRemoved(t *testing.T) {
	t.Parallel()
	const pw = "module-pass-1"
	const feature = "urn:xmpp:extdisco:2" // mod_external_services, not in the development profile
	without, with := layer{}, layer{Modules: []string{"external_services"}}
	s := liveServer(t, without, withAccounts(nil, pw, "admin@localhost"))
	waitAccounts(s, 1)
	pid := s.ProsodyPID()
	if contains(discoFeatures(t, s, "admin@localhost", pw), feature) {
		t.Fatal(feature + " advertised before mod_external_services is added")
	}
	profile := profilePath(filepath.Join(s.Dir, "custom"))

	before := reloads(t, s, "")
	writeAtomic(t, profile, profileJSON(t, nil, with))
	waitOutcome(t, s, before, "applied")
	if !contains(discoFeatures(t, s, "admin@localhost", pw), feature) {
		t.Fatal("mod_external_services added to the profile but " + feature + " is not in disco#info")
	}
	if !s.Logged(`"msg":"module loaded","module":"external_services"`) {
		t.Error("the entrypoint did not log loading mod_external_services")
	}

	before = reloads(t, s, "")
	writeAtomic(t, profile, profileJSON(t, nil, without))
	waitOutcome(t, s, before, "applied")
	if contains(discoFeatures(t, s, "admin@localhost", pw), feature) {
		t.Fatal("mod_external_services removed from the profile but " + feature + " is still in disco#info")
	}
	if got := s.ProsodyPID(); got != pid {
		t.Fatalf("prosody restarted (pid %d, was %d) for module changes", got, pid)
	}
}

// clientPair runs two logged-in slixmpp clients exchanging numbered messages
// until stop is called, which returns their result.
type clientPair struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan map[string]any
}

func startPair(t *testing.T, s *Server, pw string) *clientPair {
	t.Helper()
	needSlixmpp(t)
	cmd := exec.Command(slixmppPython, filepath.Join(repoRoot, "test", "e2e", "clients", "lifecycle_client.py"),
		"--port", strconv.Itoa(s.C2S), "--ca", selfSignedCA(s), "--interval", "0.05",
		"pair", "alice@localhost", pw, "bob@localhost", pw)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &clientPair{cmd: cmd, stdin: stdin, lines: make(chan map[string]any, 4)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.lines <- m
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	select {
	case m, ok := <-p.lines:
		if !ok || m["event"] != "online" {
			t.Fatalf("client pair did not come online: %v", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("client pair not online after 30s")
	}
	return p
}

func (p *clientPair) stop(t *testing.T) map[string]any {
	t.Helper()
	fmt.Fprintln(p.stdin, "stop")
	select {
	case m, ok := <-p.lines:
		if !ok {
			t.Fatal("client pair ended without a result")
		}
		if m["error"] != nil {
			t.Fatalf("client pair: %v", m["error"])
		}
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("client pair gave no result 30s after stop")
	}
	return nil
}

// While two real clients exchange messages: a syntax error and a feature
// naming a module that does not exist are refused (shown in /status), a fixed
// edit is applied live; the clients stay connected and lose no message.
func TestReloadRefusesBadEditsWhileClientsStayConnected(t *testing.T) {
	t.Parallel()
	const pw = "pair-pass-1"
	s := liveServer(t, layer{}, withAccounts(nil, pw, "alice@localhost", "bob@localhost"))
	waitAccounts(s, 2)
	pid := s.ProsodyPID()
	custom := filepath.Join(s.Dir, "custom")
	pair := startPair(t, s, pw)

	before := reloads(t, s, "")
	writeAtomic(t, profilePath(custom), []byte("{\n  \"name\": \"e2e-live\",\n  \"description\": \"a comma is missing\"\n  \"features\": []\n}\n"))
	st := waitOutcome(t, s, before, "refused")
	if !strings.Contains(st.LastReload.Error, "profile.json:4") || !strings.Contains(st.LastReload.Error, "invalid JSON") {
		t.Errorf("refusal of invalid JSON does not name file and line: %s", st.LastReload.Error)
	}
	if code, body, _ := s.Get("/readyz"); code != 200 {
		t.Errorf("/readyz after a refused edit: %d %s, want 200 (Prosody runs its last good config)", code, body)
	}

	bogus := map[string]any{
		"name": "e2e/bogus", "description": "names a module that no Prosody ships", "stability": "experimental",
		"global": map[string]any{"modules": []string{"e2e_no_such_module"}},
	}
	b, _ := json.Marshal(bogus)
	writeAtomic(t, filepath.Join(custom, "features", "e2e", "bogus.json"), b)
	before = reloads(t, s, "")
	writeAtomic(t, profilePath(custom), profileJSON(t, []string{"e2e/bogus"}, layer{}))
	st = waitOutcome(t, s, before, "refused")
	if !strings.Contains(st.LastReload.Error, "e2e_no_such_module") {
		t.Errorf("refusal of a missing module does not name it: %s", st.LastReload.Error)
	}

	before = reloads(t, s, "")
	writeAtomic(t, profilePath(custom), profileJSON(t, nil, layer{Settings: map[string]any{"muc_room_default_history_length": 30}}))
	waitOutcome(t, s, before, "applied")
	if !strings.Contains(s.RenderedConfig(), "muc_room_default_history_length = 30") {
		t.Error("the fixed edit is not in the running config")
	}

	res := pair.stop(t)
	if res["disconnects"].(float64) != 0 || res["sent"].(float64) < 5 || res["received"] != res["sent"] {
		t.Fatalf("clients across the reloads: %v, want no disconnect and every message received", res)
	}
	if got := s.ProsodyPID(); got != pid {
		t.Fatalf("prosody restarted (pid %d, was %d)", got, pid)
	}
	t.Logf("clients across three edits: %v", res)
}

// A restart-class change (umask, read once at start) restarts
// Prosody under PROSODY_RELOAD_RESTART=auto and only logs under never.
func TestReloadRestartClassChange(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"auto", "never"} {
		t.Run(policy, func(t *testing.T) {
			s := liveServer(t, layer{}, map[string]string{"PROSODY_RELOAD_RESTART": policy})
			pid := s.ProsodyPID()
			before := reloads(t, s, "")
			writeAtomic(t, profilePath(filepath.Join(s.Dir, "custom")),
				profileJSON(t, nil, layer{Settings: map[string]any{"umask": "0027"}}))
			if policy == "never" {
				waitOutcome(t, s, before, "pending-restart")
				if got := s.ProsodyPID(); got != pid {
					t.Fatalf("prosody restarted under PROSODY_RELOAD_RESTART=never (pid %d, was %d)", got, pid)
				}
				if !s.Logged("change needs a restart", `"why":"option umask changed"`) {
					t.Error("the log does not say which change needs a restart")
				}
				return
			}
			waitOutcome(t, s, before, "restarted")
			s.WaitReady(20 * time.Second)
			if got := s.ProsodyPID(); got == pid || got == 0 {
				t.Fatalf("prosody pid %d after a restart-class change, was %d: want a restart", got, pid)
			}
			if !strings.Contains(s.RenderedConfig(), `umask = "0027"`) {
				t.Error("the restarted prosody does not run the new config")
			}
		})
	}
}

// Storage is never switched by a reload: the data would stay behind in the
// old backend. The change is refused, naming the way that migrates it.
func TestReloadRefusesStorageChange(t *testing.T) {
	t.Parallel()
	s := liveServer(t, layer{}, nil)
	pid := s.ProsodyPID()
	before := reloads(t, s, "")
	writeAtomic(t, profilePath(filepath.Join(s.Dir, "custom")),
		profileJSON(t, nil, layer{Settings: map[string]any{"storage": "internal", "sql": nil, "sqlite_tune": nil}}))
	waitOutcome(t, s, before, "refused")
	if st := s.Status(); st.LastReload == nil || !strings.Contains(st.LastReload.Error, "PROSODY_STORAGE") {
		t.Fatalf("/status last_reload = %+v, want a refusal naming PROSODY_STORAGE", st.LastReload)
	}
	if got := s.ProsodyPID(); got != pid {
		t.Fatalf("prosody restarted (pid %d, was %d) for a refused storage change", got, pid)
	}
	if strings.Contains(s.RenderedConfig(), `storage = "internal"`) {
		t.Error("the refused storage change reached the running config")
	}
}

// A Kubernetes ConfigMap volume: the files are symlinks through `..data`,
// which kubelet swaps atomically; the swap is seen and applied.
func TestReloadSeesConfigMapDataSwap(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Profile: liveProfile, Env: map[string]string{"PROSODY_WATCH_DEBOUNCE": "100ms"}})
	custom := filepath.Join(s.Dir, "custom")
	version := func(n int, g layer) {
		dir := filepath.Join(custom, fmt.Sprintf("..2026_01_0%d", n))
		writeAtomic(t, filepath.Join(dir, "profiles", liveProfile, "profile.json"), profileJSON(t, nil, g))
		tmp := filepath.Join(custom, "..data_tmp")
		os.Remove(tmp)
		if err := os.Symlink(filepath.Base(dir), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(custom, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version(1, layer{})
	if err := os.Symlink(filepath.Join("..data", "profiles"), filepath.Join(custom, "profiles")); err != nil {
		t.Fatal(err)
	}
	s.Start()
	s.WaitReady(20 * time.Second)
	pid := s.ProsodyPID()
	before := reloads(t, s, "")
	version(2, layer{Settings: map[string]any{"muc_room_default_history_length": 42}})
	waitOutcome(t, s, before, "applied")
	if !strings.Contains(s.RenderedConfig(), "muc_room_default_history_length = 42") {
		t.Fatal("the swapped ConfigMap content is not in the running config")
	}
	if got := s.ProsodyPID(); got != pid {
		t.Fatalf("prosody restarted (pid %d, was %d)", got, pid)
	}
}

// A burst of 50 writes is one reload. The debounce is set wide (1 s) so that a
// loaded machine stalling the writer, or the burst outlasting the debounce's cap
// (10 × the debounce), does not split it; the burst itself says when it did.
func TestReloadBurstIsOneReload(t *testing.T) {
	t.Parallel()
	const debounce = time.Second
	s := liveServer(t, layer{}, map[string]string{"PROSODY_WATCH_DEBOUNCE": debounce.String()})
	profile := profilePath(filepath.Join(s.Dir, "custom"))
	before := reloads(t, s, "")
	begin := time.Now()
	last, maxGap := begin, time.Duration(0)
	for i := 1; i <= 50; i++ {
		writeAtomic(t, profile, profileJSON(t, nil, layer{Settings: map[string]any{"muc_room_default_history_length": i}}))
		now := time.Now()
		maxGap = max(maxGap, now.Sub(last))
		last = now
		time.Sleep(4 * time.Millisecond) // the burst's pacing: 50 writes over about 200 ms
	}
	if burst := time.Since(begin); maxGap >= debounce || burst >= 10*debounce {
		t.Fatalf("the writer paused %s inside a %s burst (debounce %s): the machine stalled, the test proves nothing", maxGap, burst, debounce)
	}
	waitOutcome(t, s, before, "applied")
	// Nothing more may follow: a second reload would start one debounce after a late event.
	wait.Holds(t, 2*debounce+500*time.Millisecond, "one reload for one burst", func() error {
		if n := reloads(t, s, "") - before; n != 1 {
			return fmt.Errorf("%v reloads for one burst of 50 writes, want 1", n)
		}
		return nil
	})
	if !strings.Contains(s.RenderedConfig(), "muc_room_default_history_length = 50") {
		t.Fatal("the running config is not the burst's last write")
	}
}

// SIGHUP to the entrypoint re-renders and reloads (here with the watcher off),
// and /readyz says "reloading" while Prosody has not confirmed the reload.
func TestSIGHUPReloadsAndReadinessSaysReloading(t *testing.T) {
	t.Parallel()
	s := liveServer(t, layer{}, map[string]string{"PROSODY_WATCH": "false"})
	pid := s.ProsodyPID()
	writeAtomic(t, profilePath(filepath.Join(s.Dir, "custom")),
		profileJSON(t, nil, layer{Settings: map[string]any{"muc_room_default_history_length": 7}}))
	// Freeze Prosody so that the reload cannot finish while we look at it.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	before := reloads(t, s, "")
	if err := s.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		syscall.Kill(pid, syscall.SIGCONT)
		t.Fatal(err)
	}
	var body string
	s.WaitFor(10*time.Second, "/readyz 503 reloading", func() bool {
		var code int
		code, body, _ = s.Get("/readyz")
		return code == 503 && strings.Contains(body, "reloading")
	})
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitOutcome(t, s, before, "applied")
	s.WaitReady(10 * time.Second)
	if !strings.Contains(s.RenderedConfig(), "muc_room_default_history_length = 7") {
		t.Fatal("SIGHUP did not re-render the config")
	}
	if got := s.ProsodyPID(); got != pid {
		t.Fatalf("prosody restarted (pid %d, was %d)", got, pid)
	}
	t.Logf("/readyz during the reload: %s", strings.TrimSpace(body))
}

// A rotated secret is not in the rendered bytes (Prosody reads it with
// Credential()), yet it must reach Prosody: the reload sees the change and
// restarts, since modules read their secrets when they start. Here the
// generated upload secret is removed (so a new one is generated) and the
// entrypoint gets SIGHUP.
func TestRotatedSecretRestartsProsody(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{}).Start()
	s.WaitReady(20 * time.Second)
	pid := s.ProsodyPID()
	secret := filepath.Join(s.Dir, "data", "secrets", "upload_secret")
	old, err := os.ReadFile(secret)
	if err != nil {
		t.Fatalf("the development profile's upload secret was not generated: %v", err)
	}
	if err := os.Remove(secret); err != nil {
		t.Fatal(err)
	}
	if err := s.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.WaitFor(20*time.Second, "a restart for the rotated secret", func() bool {
		st := s.Status()
		return st.LastReload != nil && st.LastReload.Outcome == "restarted"
	})
	s.WaitReady(20 * time.Second)
	if got := s.ProsodyPID(); got == pid {
		t.Fatalf("prosody pid unchanged (%d) after the secret changed", pid)
	}
	cred, err := os.ReadFile(filepath.Join(s.Dir, "runtime", "credentials", "upload_secret"))
	if err != nil || string(cred) == string(old) {
		t.Fatalf("the credential Prosody reads was not rotated (err %v)", err)
	}
}
