package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// probeResult is what clients/features_probe.py (slixmpp) saw.
type probeResult struct {
	StreamFeatures [][]string           `json:"stream_features"` // "{ns}name" per <stream:features>, last = after login
	Server         discoInfo            `json:"server"`
	Account        discoInfo            `json:"account"`
	Items          map[string]discoInfo `json:"items"`
	Infos          map[string]discoInfo `json:"infos"` // disco#info of each --info JID
	MUC            map[string]struct {
		Room          string   `json:"room"`
		StatusCodes   []string `json:"status_codes"`
		MessageEchoed bool     `json:"message_echoed"`
	} `json:"muc"`
	Upload map[string]struct {
		PutURL    string `json:"put_url"`
		GetURL    string `json:"get_url"`
		SHA256    string `json:"sha256"`
		PutStatus int    `json:"put_status"`
		GetStatus int    `json:"get_status"`
		SameBytes bool   `json:"same_bytes"`
	} `json:"upload"`

	// Seen by the test itself: on its own c2s stream and over HTTP on the
	// server's http port.
	FAST         bool // <fast> in SASL2's inline features, offered when the stream says from=
	UploadHTTPS  bool // the slot's own https URL serves the file, with a certificate the client trusts
	WebSocket101 bool
	BOSH         bool
	Metrics      bool
}

type discoInfo struct {
	Features   []string    `json:"features"`
	Identities [][2]string `json:"identities"`
	// Forms are the XEP-0128 extensions: FORM_TYPE -> field var -> values.
	Forms map[string]map[string][]string `json:"forms"`
}

func (d discoInfo) has(feature string) bool { return slices.Contains(d.Features, feature) }

func (d discoInfo) is(category, typ string) bool {
	return slices.Contains(d.Identities, [2]string{category, typ})
}

// streamHas reports whether any <stream:features> before the last (that is,
// before login) carries el; the last one is after login.
func (r *probeResult) preAuthHas(el string) bool {
	for _, f := range r.StreamFeatures[:max(len(r.StreamFeatures)-1, 0)] {
		if slices.Contains(f, el) {
			return true
		}
	}
	return false
}

func (r *probeResult) postAuthHas(el string) bool {
	return len(r.StreamFeatures) > 0 && slices.Contains(r.StreamFeatures[len(r.StreamFeatures)-1], el)
}

// component is the disco#items entry offering a service: identity category
// and type.
func (r *probeResult) component(category, typ string) (string, bool) {
	for jid, info := range r.Items {
		if info.is(category, typ) {
			return jid, true
		}
	}
	return "", false
}

// observable is one thing a client can see, offered exactly when the plan
// has one of features. This table is the contract between the catalog
// (config/features) and what Prosody 13 really serves: when they disagree in
// either direction, the test fails.
type observable struct {
	what     string
	features []string
	seen     func(r *probeResult) bool
}

var observables = []observable{
	{"MAM (urn:xmpp:mam:2) in the account's disco#info", []string{"messaging/archive"},
		func(r *probeResult) bool { return r.Account.has("urn:xmpp:mam:2") }},
	{"carbons (urn:xmpp:carbons:2) in the server's disco#info", []string{"messaging/carbons"},
		func(r *probeResult) bool { return r.Server.has("urn:xmpp:carbons:2") }},
	{"push (urn:xmpp:push:0) in the account's disco#info", []string{"mobile/push"},
		func(r *probeResult) bool { return r.Account.has("urn:xmpp:push:0") }},
	// csi_battery_saver (mobile/battery) depends on csi.
	{"CSI (urn:xmpp:csi:0) stream feature after login", []string{"mobile/csi", "mobile/battery"},
		func(r *probeResult) bool { return r.postAuthHas("{urn:xmpp:csi:0}csi") }},
	{"stream management (urn:xmpp:sm:3) stream feature after login", []string{"messaging/core"},
		func(r *probeResult) bool { return r.postAuthHas("{urn:xmpp:sm:3}sm") }},
	// Parts are written feature#part: SASL2 nests Bind2 and FAST (off by default).
	{"SASL2 (urn:xmpp:sasl:2) stream feature before login", []string{"authentication/modern#sasl2"},
		func(r *probeResult) bool { return r.preAuthHas("{urn:xmpp:sasl:2}authentication") }},
	{"Bind2 (urn:xmpp:bind:0) inline in SASL2", []string{"authentication/modern#bind2"},
		func(r *probeResult) bool { return r.preAuthHas("{urn:xmpp:bind:0}bind") }},
	{"FAST (urn:xmpp:fast:0) inline in SASL2", []string{"authentication/modern#fast"},
		func(r *probeResult) bool { return r.FAST }},
	{"blocking (urn:xmpp:blocking) in the server's disco#info", []string{"messaging/core"},
		func(r *probeResult) bool { return r.Server.has("urn:xmpp:blocking") }},
	{"bookmarks (urn:xmpp:bookmarks:1#compat) in the account's disco#info", []string{"collaboration/bookmarks"},
		func(r *probeResult) bool { return r.Account.has("urn:xmpp:bookmarks:1#compat") }},
	{"spam reporting (urn:xmpp:reporting:1) in the server's disco#info", []string{"security/antispam"},
		func(r *probeResult) bool { return r.Server.has("urn:xmpp:reporting:1") }},
	{"MUC component (conference/text) where a room is created and echoes a message", []string{"collaboration/muc"},
		func(r *probeResult) bool {
			jid, ok := r.component("conference", "text")
			m, joined := r.MUC[jid]
			return ok && joined && slices.Contains(m.StatusCodes, "110") && m.MessageEchoed
		}},
	{"HTTP upload component (urn:xmpp:http:upload:0) where a file is PUT and fetched back", []string{"web/upload"},
		func(r *probeResult) bool {
			jid, ok := r.component("store", "file")
			u, done := r.Upload[jid]
			return ok && r.Items[jid].has("urn:xmpp:http:upload:0") && done &&
				u.PutStatus == http.StatusCreated && u.GetStatus == http.StatusOK && u.SameBytes && r.UploadHTTPS
		}},
	{"pubsub component (pubsub/service)", []string{"collaboration/pubsub"},
		func(r *probeResult) bool { _, ok := r.component("pubsub", "service"); return ok }},
	{"websocket upgrade (101, protocol xmpp) at /xmpp-websocket", []string{"web/websocket"},
		func(r *probeResult) bool { return r.WebSocket101 }},
	{"BOSH at /http-bind", []string{"web/http"},
		func(r *probeResult) bool { return r.BOSH }},
	{"Prometheus metrics at /metrics", []string{"admin/monitoring"},
		func(r *probeResult) bool { return r.Metrics }},
}

// probePython is Debian's python3 with slixmpp (a pyenv python3 on PATH
// usually lacks it). The test fails, naming the package, when it is missing.
func probePython(t testing.TB) string {
	t.Helper()
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import slixmpp").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import slixmpp (install Debian package python3-slixmpp): %v\n%s", py, err, out)
	}
	return py
}

// runClient runs the real client test/e2e/clients/<script> (slixmpp) with args,
// bounded by 90s, and decodes the JSON report it prints into report; a report
// whose "error" is set fails the test with what the client saw so far.
func runClient(t testing.TB, report any, script string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, probePython(t), append([]string{filepath.Join(repoRoot, "test", "e2e", "clients", script)}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var failed struct {
		Error string `json:"error"`
	}
	if jerr := errors.Join(json.Unmarshal(out, report), json.Unmarshal(out, &failed)); jerr != nil {
		t.Fatalf("%s: %v (exit %v)\nstdout: %s\nstderr: %s", script, jerr, err, out, tail(stderr.String(), 4000))
	}
	if failed.Error != "" {
		t.Fatalf("%s: %s\nsaw so far: %s\nstderr: %s", script, failed.Error, out, tail(stderr.String(), 4000))
	}
}

// runProbe logs in as jid with the real client and returns what it saw; it also
// fetches the disco#info of each of infoJIDs (in Infos).
func runProbe(t testing.TB, s *Server, caFile, jid, password string, infoJIDs ...string) *probeResult {
	t.Helper()
	args := []string{"--port", strconv.Itoa(s.C2S), "--http-port", strconv.Itoa(s.HTTP), "--ca", caFile}
	for _, j := range infoJIDs {
		args = append(args, "--info", j)
	}
	var r probeResult
	runClient(t, &r, "features_probe.py", append(args, jid, password)...)
	return &r
}

// randomPassword is a fresh account password for one test.
func randomPassword() string {
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	return hex.EncodeToString(pw)
}

// httpGet fetches path from the server's plain HTTP port with Host: the domain.
func httpGet(s *Server, path string) (int, string, error) {
	req, err := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(s.HTTP)+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = s.Domain
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// webSocketUpgrade asks for an XMPP websocket (RFC 7395) and reports whether
// the server switched protocols with a correct handshake. A refused
// connection (no HTTP listener) is "no".
func webSocketUpgrade(s *Server) (bool, string) {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.HTTP)), 5*time.Second)
	if err != nil {
		return false, err.Error()
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /xmpp-websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n", s.Domain)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return false, err.Error()
	}
	// The accept value for that key is fixed by RFC 6455 section 1.3.
	ok := resp.StatusCode == http.StatusSwitchingProtocols &&
		resp.Header.Get("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" &&
		resp.Header.Get("Sec-WebSocket-Protocol") == "xmpp"
	return ok, fmt.Sprintf("%s %v", resp.Status, resp.Header)
}

// fetchSlotOverHTTPS GETs an upload slot's URL as a client would, over
// HTTPS verified against caFile for the URL's host, but dialling 127.0.0.1;
// the URL must name the server's https port and serve bytes with sum sha.
func fetchSlotOverHTTPS(s *Server, caFile, rawURL, sha string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("parse slot url %q: %w", rawURL, err)
	}
	if u.Scheme != "https" || u.Port() != strconv.Itoa(s.HTTPS) {
		return fmt.Errorf("slot url %s is not https on the server's https port %d", rawURL, s.HTTPS)
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", u.Port()))
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(rawURL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if sum := sha256.Sum256(body); resp.StatusCode != http.StatusOK || hex.EncodeToString(sum[:]) != sha {
		return fmt.Errorf("GET %s: %s, %d bytes, not the uploaded file", rawURL, resp.Status, len(body))
	}
	return nil
}

// registerWithoutInvite asks for a new account over XEP-0077 on an encrypted
// stream, as a client with no invitation does, and returns the server's <iq>.
func registerWithoutInvite(t testing.TB, s *Server, caFile string) string {
	pw := make([]byte, 8)
	_, _ = rand.Read(pw)
	_, _, reply := c2sSecureStream(t, s, caFile, "", func(w io.Writer, r *bufio.Reader) string {
		fmt.Fprintf(w, "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>stranger-%s</username>"+
			"<password>%s</password></query></iq>", hex.EncodeToString(pw[:4]), hex.EncodeToString(pw[4:]))
		var b strings.Builder
		for {
			c, err := r.ReadByte()
			if err != nil {
				return fmt.Sprintf("no answer: %v (%s)", err, b.String())
			}
			b.WriteByte(c)
			// The answer is <iq …/> or <iq …>…</iq>.
			text := b.String()
			i := strings.Index(text, "<iq")
			if i < 0 {
				continue
			}
			iq := text[i:]
			if strings.HasSuffix(iq, "</iq>") || (strings.Count(iq, ">") == 1 && strings.HasSuffix(iq, "/>")) {
				return iq
			}
		}
	})
	return reply
}

// renderedPlan is the part of `entrypoint render --json` these tests read.
type renderedPlan struct {
	Features []struct {
		Name  string   `json:"name"`
		Parts []string `json:"parts"`
	} `json:"features"`
	Components []struct {
		Address string `json:"address"`
		Type    string `json:"type"`
	} `json:"components"`
}

// planOf runs `entrypoint render --json` with the server's environment: the
// plan as the CLI prints it, independent of the running server.
func planOf(t testing.TB, s *Server) renderedPlan {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, entrypointBin, "render", "--json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("entrypoint render --json: %v\n%s", err, out)
	}
	var p renderedPlan
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("decode render --json: %v", err)
	}
	return p
}

// For every profile, in production (CA-signed certificate, invitation-only
// registration, rate limits) and development: a real client (slixmpp) logs
// in, and what it finds through stream features, disco#info, disco#items,
// joining a room, uploading a file and upgrading to a websocket is exactly
// what the plan (/status and `entrypoint render --json`) declares, by the
// observables table: everything declared works, nothing left out is there.
// The four profiles of one environment run at once.
func TestProfilesOfferExactlyWhatThePlanDeclares(t *testing.T) {
	probePython(t)
	ca := newProfileCA(t, t.TempDir())
	for _, environment := range []string{"production", "development"} {
		t.Run(environment, func(t *testing.T) {
			servers := map[string]*Server{}
			passwords := map[string]string{}
			for _, profile := range catalogProfiles {
				passwords[profile] = randomPassword()
				env := map[string]string{
					"PROSODY_ADMINS":         "admin@" + profileDomain,
					"PROSODY_ADMIN_PASSWORD": passwords[profile],
				}
				if profile == "minimal" {
					// The admin account is created over the admin shell, which
					// minimal leaves out; admin/shell adds nothing a client sees,
					// and the table still compares with the plan as it runs.
					env["PROSODY_FEATURES_ADMIN_SHELL"] = "true"
				}
				servers[profile] = newProfileServer(t, ca, profile, environment, env).Start()
			}
			for _, profile := range catalogProfiles {
				t.Run(profile, func(t *testing.T) {
					s := servers[profile].In(t)
					_ = checkOffersExactlyThePlan(t, s, serverCA(s, ca), passwords[profile])
				})
			}
		})
	}
}

// checkOffersExactlyThePlan logs in to s as the admin and compares what a
// client sees with the observables table; it returns the planned features.
func checkOffersExactlyThePlan(t *testing.T, s *Server, caFile, password string) []string {
	s.WaitReady(60 * time.Second)
	s.WaitFor(30*time.Second, "admin account created", func() bool {
		return strings.Contains(s.Stderr(), "admin account created")
	})
	st := s.Status()
	plan := planOf(t, s)
	var planned, offered []string
	for _, f := range plan.Features {
		planned = append(planned, f.Name)
		offered = append(offered, f.Name)
		for _, part := range f.Parts {
			offered = append(offered, f.Name+"#"+part)
		}
	}
	slices.Sort(planned)
	if running := slices.Sorted(slices.Values(st.Features)); !slices.Equal(running, planned) {
		t.Fatalf("/status features %v differ from `render --json` features %v", running, planned)
	}

	r := runProbe(t, s, caFile, "admin@"+s.Domain, password)
	// slixmpp sends no from= on its stream, so FAST is looked for on ours.
	_, secure := c2sStreamFeatures(t, s, caFile, "admin@"+s.Domain)
	r.FAST = strings.Contains(secure, "<fast xmlns='urn:xmpp:fast:0'")
	r.WebSocket101, _ = webSocketUpgrade(s)
	for _, u := range r.Upload {
		err := fetchSlotOverHTTPS(s, caFile, u.GetURL, u.SHA256)
		if r.UploadHTTPS = err == nil; err != nil {
			t.Logf("upload slot over https: %v", err)
		}
	}
	code, body, err := httpGet(s, "/http-bind")
	r.BOSH = err == nil && code == http.StatusOK && strings.Contains(body, "BOSH")
	code, body, err = httpGet(s, "/metrics")
	r.Metrics = err == nil && code == http.StatusOK && strings.Contains(body, "prosody_")

	var verified []string
	for _, o := range observables {
		want := slices.ContainsFunc(o.features, func(f string) bool { return slices.Contains(offered, f) })
		got := o.seen(r)
		switch {
		case want && !got:
			t.Errorf("the plan has %v but a client does not see %s", o.features, o.what)
		case !want && got:
			t.Errorf("the plan has none of %v but a client sees %s", o.features, o.what)
		case want:
			verified = append(verified, o.what)
		}
	}
	// In-band registration is the environment's policy: open in development,
	// by invitation only in production (IBR is still offered there, for
	// invited users, so the test registers without an invite).
	environment := s.Env["PROSODY_ENVIRONMENT"]
	wantOpen := environment == "development" || environment == "testing"
	if answer := registerWithoutInvite(t, s, caFile); strings.Contains(answer, "type='result'") != wantOpen {
		t.Errorf("in %s, registering without an invite answered %s; want registration open = %v", environment, answer, wantOpen)
	}
	// disco#items lists exactly the plan's components, no more.
	var items, components []string
	for jid := range r.Items {
		items = append(items, jid)
	}
	for _, c := range plan.Components {
		components = append(components, c.Address)
	}
	slices.Sort(items)
	slices.Sort(components)
	if !slices.Equal(items, components) {
		t.Errorf("disco#items of %s = %v, the plan's components = %v", s.Domain, items, components)
	}
	if t.Failed() {
		raw, _ := json.MarshalIndent(r, "", " ")
		t.Logf("the client saw: %s", raw)
		if _, detail := webSocketUpgrade(s); !r.WebSocket101 {
			t.Logf("websocket answer: %s", detail)
		}
	}
	t.Logf("verified by slixmpp and HTTP: %s", strings.Join(verified, "; "))
	for name, text := range map[string]string{"entrypoint log": s.Stderr(), "prosody log": s.Stdout()} {
		if strings.Contains(text, password) {
			t.Errorf("%s contains the admin password", name)
		}
	}
	if bad := profileLogProblems(s.Stdout()); bad != "" {
		t.Errorf("prosody logged module or port problems:\n%s", bad)
	}
	return planned
}

// Toggles change what clients see, not only the rendered file: standard with
// archive, websocket and CSI switched off and pubsub switched on offers no
// MAM, no websocket and no CSI, and a pubsub component.
func TestFeatureTogglesChangeWhatClientsSee(t *testing.T) {
	probePython(t)
	ca := newProfileCA(t, t.TempDir())
	password := randomPassword()
	s := newProfileServer(t, ca, "standard", "development", map[string]string{
		"PROSODY_FEATURES":       "-messaging/archive,-web/websocket,-mobile/csi,+collaboration/pubsub",
		"PROSODY_ADMINS":         "admin@" + profileDomain,
		"PROSODY_ADMIN_PASSWORD": password,
	}).Start()
	planned := checkOffersExactlyThePlan(t, s, serverCA(s, ca), password)
	for _, f := range []string{"messaging/archive", "web/websocket", "mobile/csi"} {
		if slices.Contains(planned, f) {
			t.Errorf("PROSODY_FEATURES=-%s left it in the plan", f)
		}
	}
	if !slices.Contains(planned, "collaboration/pubsub") {
		t.Errorf("PROSODY_FEATURES=+collaboration/pubsub did not add it to the plan")
	}
}

// The design's toggles change what clients see: SASL2=false takes Bind2 and FAST with
// it, WEB_ENABLED=false the whole web group (http, websocket, BOSH, upload); FAST is
// offered only with PROSODY_FEATURES_AUTH_FAST=true.
func TestDesignTogglesChangeWhatClientsSee(t *testing.T) {
	probePython(t)
	ca := newProfileCA(t, t.TempDir())
	password := randomPassword()
	for _, toggles := range []map[string]string{
		{"PROSODY_FEATURES_AUTH_SASL2": "false", "PROSODY_FEATURES_WEB_ENABLED": "false"},
		{"PROSODY_FEATURES_AUTH_FAST": "true"},
	} {
		env := map[string]string{"PROSODY_ADMINS": "admin@" + profileDomain, "PROSODY_ADMIN_PASSWORD": password}
		var name []string
		for k, v := range toggles {
			env[k] = v
			name = append(name, k+"="+v)
		}
		slices.Sort(name)
		t.Run(strings.Join(name, ","), func(t *testing.T) {
			s := newProfileServer(t, ca, "standard", "development", env).Start()
			planned := checkOffersExactlyThePlan(t, s, serverCA(s, ca), password)
			web := slices.ContainsFunc(planned, func(f string) bool { return strings.HasPrefix(f, "web/") })
			if toggles["PROSODY_FEATURES_WEB_ENABLED"] == "false" && web {
				t.Errorf("WEB_ENABLED=false left web features in the plan: %v", planned)
			}
		})
	}
}
