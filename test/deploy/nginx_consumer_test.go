package deploy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/internal/wait"
	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
)

// A real nginx (Debian's), configured from the shipped template through compose/proxy.yml,
// terminates TLS in front of a real Prosody run by the entrypoint with the variables the
// proxy files give it. Through nginx only: an ACME challenge file is served, XMPP over
// websocket and BOSH log in (Prosody offers PLAIN only on a stream it considers encrypted,
// which it learns from X-Forwarded-Proto), and an upload slot requested over the websocket
// session is PUT and fetched back (the upload component answers only on the Host the proxy
// forwards). Prosody records each session's address as the client's, from the X-Forwarded-For
// of the proxy it trusts: the clients connect from other loopback addresses than nginx's.
func TestNginxInFrontOfProsody(t *testing.T) {
	root := repoRoot(t)
	ports, err := entrypointtest.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	nginxHTTP, nginxHTTPS, prosodyHTTP := ports[0], ports[1], ports[2]
	pki := newTestPKI(t)
	st, conf := renderProxy(t, proxyVars(t, nginxHTTP, nginxHTTPS, prosodyHTTP), pki)

	const user, password = "admin", "nginx-test-password-1"
	extra := map[string]string{
		"PROSODY_DOMAIN":         proxyDomain,
		"PROSODY_HTTP_PORT":      strconv.Itoa(prosodyHTTP),
		"PROSODY_ADMINS":         user + "@" + proxyDomain,
		"PROSODY_ADMIN_PASSWORD": password,
	}
	for k, v := range st.ProsodyEnv {
		extra[k] = v
	}
	if extra["PROSODY_HTTP_EXTERNAL_URL"] == "" {
		t.Fatalf("the proxy files do not tell Prosody its public URL (PROSODY_HTTP_EXTERNAL_URL); they set %v", st.ProsodyEnv)
	}
	srv := startPFEWith(t, buildEntrypoint(t, root), root, extra)
	runNginx(t, nginxPrefix(t, st, conf), nginxHTTPS)
	srv.waitReady(t, 90*time.Second)

	tlsConf := &tls.Config{RootCAs: pki.CA, ServerName: proxyDomain}
	httpsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(nginxHTTPS))
	// The client resolves every name to the proxy, as DNS would.
	// Linux routes all of 127.0.0.0/8 to lo: the websocket client connects from 127.0.0.2 and
	// the BOSH client from 127.0.0.3, while nginx reaches Prosody from 127.0.0.1, the address
	// the proxy files make Prosody trust (PROSODY_TRUSTED_PROXIES). Neither client address is
	// trusted, so Prosody must take it from X-Forwarded-For.
	wsFrom, boshFrom := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}
	httpsClient := func(from net.Addr) *http.Client {
		return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			TLSClientConfig: tlsConf,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				return (&net.Dialer{LocalAddr: from}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			},
		}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	client := httpsClient(nil)

	t.Run("acme-challenge", func(t *testing.T) {
		dir, _, ok := st.hostPath(st.ProxyEnv["NGINX_ACME_ROOT"])
		if !ok {
			t.Fatalf("NGINX_ACME_ROOT %q is not mounted", st.ProxyEnv["NGINX_ACME_ROOT"])
		}
		token := "tok-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		path := filepath.Join(dir, ".well-known", "acme-challenge")
		if err := os.MkdirAll(path, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(path, token), []byte(token+".key-authz"), 0o644); err != nil {
			t.Fatal(err)
		}
		base := "http://" + proxyDomain + ":" + strconv.Itoa(nginxHTTP)
		body, status := get(t, client, base+"/.well-known/acme-challenge/"+token)
		if status != http.StatusOK || body != token+".key-authz" {
			t.Errorf("challenge: %d %q, want 200 and the file's content", status, body)
		}
		resp, err := client.Get(base + "/http-bind")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(loc, "https://"+proxyDomain) {
			t.Errorf("plain HTTP: %s Location %q, want a redirect to https://%s", resp.Status, loc, proxyDomain)
		}
	})

	var session *wsXMPP
	t.Cleanup(func() { session.Close() })
	t.Run("websocket-login", func(t *testing.T) {
		// The admin account is created once Prosody is ready; log in as soon as it exists.
		wait.Until(t, 30*time.Second, "a websocket login through nginx", func() error {
			s, err := wsLogin(httpsAddr, wsFrom, tlsConf, user, password)
			if err != nil {
				if errors.Is(err, errInsecure) {
					return wait.Abort(err)
				}
				return err
			}
			session = s
			return nil
		})
	})

	t.Run("bosh-login", func(t *testing.T) {
		url := "https://" + proxyDomain + ":" + strconv.Itoa(nginxHTTPS) + "/http-bind"
		rid := 1000 + time.Now().UnixNano()%100000
		client := httpsClient(boshFrom)
		body, status := post(t, client, url, fmt.Sprintf(`<body content="text/xml; charset=utf-8" hold="1" rid="%d" to="%s" ver="1.6" wait="10" xml:lang="en" xmpp:version="1.0" xmlns="http://jabber.org/protocol/httpbind" xmlns:xmpp="urn:xmpp:xbosh"/>`, rid, proxyDomain))
		var created struct {
			SID string `xml:"sid,attr"`
		}
		if status != http.StatusOK || xml.Unmarshal([]byte(body), &created) != nil || created.SID == "" {
			t.Fatalf("BOSH session creation: %d %q, want 200 and a body with a sid", status, body)
		}
		if !offersPlain(body) {
			t.Fatalf("BOSH stream features lack PLAIN: Prosody does not consider the proxied stream encrypted (X-Forwarded-Proto lost, or nginx not trusted):\n%s", body)
		}
		body, status = post(t, client, url, fmt.Sprintf(`<body rid="%d" sid="%s" xmlns="http://jabber.org/protocol/httpbind">%s</body>`, rid+1, created.SID, plainAuth(user, password)))
		if status != http.StatusOK || !strings.Contains(body, "<success") {
			t.Fatalf("BOSH SASL PLAIN: %d %q, want success", status, body)
		}
	})

	t.Run("client-address", func(t *testing.T) {
		// mod_http replaces request.ip with the X-Forwarded-For address when the peer is a
		// trusted proxy; mod_websocket and mod_bosh copy request.ip into session.ip, which the
		// admin shell's c2s:show() prints in its "ip" column ("method" tells the transports apart).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := adminsock.Dial(ctx, filepath.Join(srv.dir, "data", "prosody.sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		res, err := conn.Exec(ctx, `c2s:show("*", "method ip")`)
		if err != nil || !res.OK {
			t.Fatalf("c2s:show over the admin socket: %v %+v", err, res)
		}
		// Rows are "Method    | IP address" (an output piece may hold several lines).
		seen := map[string][]string{}
		for _, l := range strings.Split(strings.Join(res.Output, "\n"), "\n") {
			if method, ip, ok := strings.Cut(l, "|"); ok {
				seen[strings.TrimSpace(method)] = append(seen[strings.TrimSpace(method)], strings.TrimSpace(ip))
			}
		}
		for method, want := range map[string]string{"WebSocket": wsFrom.IP.String(), "BOSH": boshFrom.IP.String()} {
			if !slices.Contains(seen[method], want) {
				t.Errorf("no %s session from %s (the client's address through X-Forwarded-For); c2s:show printed:\n%s", method, want, strings.Join(res.Output, "\n"))
			}
		}
	})

	t.Run("upload", func(t *testing.T) {
		if session == nil {
			t.Fatal("no websocket session to request a slot with")
		}
		data := bytes.Repeat([]byte("prosody-pfe behind nginx\n"), 64)
		put, getURL, headers, err := session.requestSlot("upload."+proxyDomain, "probe.txt", len(data))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(put, extra["PROSODY_HTTP_EXTERNAL_URL"]) || !strings.HasPrefix(getURL, extra["PROSODY_HTTP_EXTERNAL_URL"]) {
			t.Errorf("slot URLs %q, %q do not start with the proxy's URL %q", put, getURL, extra["PROSODY_HTTP_EXTERNAL_URL"])
		}
		req, _ := http.NewRequest(http.MethodPut, put, bytes.NewReader(data))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		req.Header.Set("Content-Type", "text/plain")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s through nginx: %s %q, want 201 Created", put, resp.Status, b)
		}
		body, status := get(t, client, getURL)
		if status != http.StatusOK || body != string(data) {
			t.Fatalf("GET %s through nginx: %d, %d bytes; want 200 and the %d bytes uploaded", getURL, status, len(body), len(data))
		}
	})
}

func get(t *testing.T, c *http.Client, url string) (string, int) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

func post(t *testing.T, c *http.Client, url, body string) (string, int) {
	t.Helper()
	resp, err := c.Post(url, "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

func offersPlain(features string) bool {
	return strings.Contains(features, "<mechanism>PLAIN</mechanism>")
}

func plainAuth(user, password string) string {
	return `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">` +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)) + `</auth>`
}

// errInsecure is a websocket stream on which Prosody offers no PLAIN: it does not consider
// the stream encrypted.
var errInsecure = errors.New("the websocket stream features lack PLAIN: Prosody does not consider the proxied stream encrypted (X-Forwarded-Proto lost, or nginx not trusted)")

// wsXMPP is an XMPP session over a websocket (RFC 7395), on the standard library: a TLS
// connection, the HTTP/1.1 upgrade, and masked text frames each holding one element.
type wsXMPP struct {
	conn net.Conn
	r    *bufio.Reader
}

// wsLogin opens a websocket to /xmpp-websocket at addr from the local address from (nil: any)
// with Host proxyDomain, authenticates with SASL PLAIN and binds a resource.
func wsLogin(addr string, from net.Addr, conf *tls.Config, user, password string) (*wsXMPP, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second, LocalAddr: from}, "tcp", addr, conf)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	s := &wsXMPP{conn: conn, r: bufio.NewReader(conn)}
	fail := func(err error) (*wsXMPP, error) { conn.Close(); return nil, err }
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	k := base64.StdEncoding.EncodeToString(key)
	fmt.Fprintf(conn, "GET /xmpp-websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n", proxyDomain, k)
	resp, err := http.ReadResponse(s.r, nil)
	if err != nil {
		return fail(fmt.Errorf("websocket upgrade: %w", err))
	}
	sum := sha1.Sum([]byte(k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) ||
		resp.Header.Get("Sec-WebSocket-Protocol") != "xmpp" {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
		return fail(fmt.Errorf("websocket upgrade through nginx: %s %v %q, want 101 with the xmpp protocol", resp.Status, resp.Header, b))
	}
	features, err := s.open()
	if err != nil {
		return fail(err)
	}
	if !offersPlain(features) {
		return fail(fmt.Errorf("%w:\n%s", errInsecure, features))
	}
	if err := s.send(plainAuth(user, password)); err != nil {
		return fail(err)
	}
	if r, err := s.recvUntil(func(e string) bool { return strings.Contains(e, "success") || strings.Contains(e, "failure") }); err != nil || !strings.Contains(r, "<success") {
		return fail(fmt.Errorf("websocket SASL PLAIN as %s: %q %v", user, r, err))
	}
	if _, err := s.open(); err != nil {
		return fail(err)
	}
	if err := s.send(`<iq type="set" id="bind1" xmlns="jabber:client"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>nginx</resource></bind></iq>`); err != nil {
		return fail(err)
	}
	if r, err := s.recvUntil(func(e string) bool { return strings.Contains(e, `id="bind1"`) || strings.Contains(e, `id='bind1'`) }); err != nil || !strings.Contains(r, "<jid>") {
		return fail(fmt.Errorf("bind: %q %v", r, err))
	}
	_ = conn.SetDeadline(time.Time{})
	return s, nil
}

// open sends the framing <open/> and returns the stream features that follow.
func (s *wsXMPP) open() (string, error) {
	if err := s.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="` + proxyDomain + `" version="1.0"/>`); err != nil {
		return "", err
	}
	return s.recvUntil(func(e string) bool { return strings.Contains(e, "features") })
}

// requestSlot asks the upload service for a slot (XEP-0363) and returns its URLs and the
// headers the PUT must carry.
func (s *wsXMPP) requestSlot(service, name string, size int) (put, get string, headers map[string]string, err error) {
	_ = s.conn.SetDeadline(time.Now().Add(15 * time.Second))
	defer s.conn.SetDeadline(time.Time{})
	if err := s.send(fmt.Sprintf(`<iq type="get" id="slot1" to="%s" xmlns="jabber:client"><request xmlns="urn:xmpp:http:upload:0" filename="%s" size="%d" content-type="text/plain"/></iq>`, service, name, size)); err != nil {
		return "", "", nil, err
	}
	r, err := s.recvUntil(func(e string) bool { return strings.Contains(e, `id="slot1"`) || strings.Contains(e, `id='slot1'`) })
	if err != nil {
		return "", "", nil, err
	}
	var iq struct {
		Type string `xml:"type,attr"`
		Slot struct {
			Put struct {
				URL     string `xml:"url,attr"`
				Headers []struct {
					Name  string `xml:"name,attr"`
					Value string `xml:",chardata"`
				} `xml:"header"`
			} `xml:"put"`
			Get struct {
				URL string `xml:"url,attr"`
			} `xml:"get"`
		} `xml:"slot"`
	}
	if err := xml.Unmarshal([]byte(r), &iq); err != nil || iq.Type != "result" || iq.Slot.Put.URL == "" {
		return "", "", nil, fmt.Errorf("upload slot from %s: %q (%v)", service, r, err)
	}
	headers = map[string]string{}
	for _, h := range iq.Slot.Put.Headers {
		headers[h.Name] = h.Value
	}
	return iq.Slot.Put.URL, iq.Slot.Get.URL, headers, nil
}

func (s *wsXMPP) Close() {
	if s == nil {
		return
	}
	_ = s.conn.SetDeadline(time.Now().Add(2 * time.Second))
	_ = s.send(`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`)
	s.conn.Close()
}

// send writes text as one masked, final text frame.
func (s *wsXMPP) send(text string) error {
	var hdr []byte
	hdr = append(hdr, 0x81)
	switch n := len(text); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, 0x80|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	mask := make([]byte, 4)
	_, _ = rand.Read(mask)
	payload := []byte(text)
	for i := range payload {
		payload[i] ^= mask[i%4]
	}
	_, err := s.conn.Write(append(append(hdr, mask...), payload...))
	return err
}

// recv reads one message, reassembling fragments and skipping control frames (the test
// session is too short for Prosody's keepalive pings to matter).
func (s *wsXMPP) recv() (string, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(s.r, h[:]); err != nil {
			return "", err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(s.r, b[:]); err != nil {
				return "", err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(s.r, b[:]); err != nil {
				return "", err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if h[1]&0x80 != 0 || n > 1<<20 {
			return "", fmt.Errorf("bad frame from the server (masked or %d bytes)", n)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(s.r, payload); err != nil {
			return "", err
		}
		switch op {
		case 0x8:
			return "", fmt.Errorf("websocket closed by the server: %q", payload)
		case 0x9, 0xA:
			continue
		}
		msg = append(msg, payload...)
		if fin {
			return string(msg), nil
		}
	}
}

// recvUntil reads messages until done accepts one, and returns it.
func (s *wsXMPP) recvUntil(done func(string) bool) (string, error) {
	var seen []string
	for {
		m, err := s.recv()
		if err != nil {
			return strings.Join(seen, ""), err
		}
		if done(m) {
			return m, nil
		}
		seen = append(seen, m)
	}
}
