package xmppcheck

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Namespaces of the XMPP core protocol (RFC 6120) that the client speaks.
const (
	nsStream  = "http://etherx.jabber.org/streams"
	nsClient  = "jabber:client"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

// maxRead bounds what one session reads from the server in total, so a
// misbehaving peer cannot make the client allocate without end.
const maxRead = 16 << 20

// Element is one XML element of the stream, its attributes, text and
// children, as read from the server.
type Element struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []Element  `xml:",any"`
	Text     string     `xml:",chardata"`
}

// Attr returns the value of the attribute local without a namespace, "" when absent.
func (e *Element) Attr(local string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child named local in namespace space ("" matches any), or nil.
func (e *Element) Child(space, local string) *Element {
	for i := range e.Children {
		c := &e.Children[i]
		if c.XMLName.Local == local && (space == "" || c.XMLName.Space == space) {
			return c
		}
	}
	return nil
}

// Find follows a path of child names (any namespace) and returns the element, or nil.
func (e *Element) Find(path ...string) *Element {
	cur := e
	for _, p := range path {
		if cur = cur.Child("", p); cur == nil {
			return nil
		}
	}
	return cur
}

// StanzaError is an <iq type='error'> (or message/presence error) answer: the
// server understood the request and refused it.
type StanzaError struct {
	Condition string // the defined condition, e.g. "service-unavailable"
	Text      string
}

func (e *StanzaError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("stanza error %s: %s", e.Condition, e.Text)
	}
	return "stanza error " + e.Condition
}

// stanzaError reads the <error/> child of a stanza.
func stanzaError(st *Element) *StanzaError {
	e := st.Child("", "error")
	if e == nil {
		return &StanzaError{Condition: "undefined-condition"}
	}
	se := &StanzaError{Condition: "undefined-condition"}
	for _, c := range e.Children {
		switch {
		case c.XMLName.Local == "text":
			se.Text = strings.TrimSpace(c.Text)
		case c.XMLName.Space == nsStanzas && se.Condition == "undefined-condition":
			se.Condition = c.XMLName.Local
		}
	}
	return se
}

// DialConfig is where and as whom a Client logs in.
type DialConfig struct {
	// Addr is the host:port of the c2s listener. Required.
	Addr string
	// Domain is the XMPP domain the stream opens to (and the TLS server name). Required.
	Domain string
	// Username and Password are the account's credentials. Required.
	Username, Password string
	// Resource is the resource asked for at bind; "" lets the server choose.
	Resource string
	// TLS is the configuration of the STARTTLS handshake; nil means verify the
	// certificate against the system roots for Domain. ServerName is set to Domain
	// when empty.
	TLS *tls.Config
}

// Client is one logged-in XMPP client session: STARTTLS, SASL SCRAM and
// resource binding done by hand (RFC 6120), with the standard library only.
// Its methods are not safe for concurrent use; the caller must Close it.
type Client struct {
	conn net.Conn
	dec  *xml.Decoder
	jid  string
	// features are the namespaces of every stream feature offered during
	// login: after STARTTLS (before authentication) and after authentication.
	features []string
	tls      tls.ConnectionState
	mech     string
	closeMu  sync.Once
	queue    []Element // stanzas read while waiting for another one
}

// Dial connects to cfg.Addr, upgrades the stream with STARTTLS, authenticates
// with SCRAM-SHA-1 (or SCRAM-SHA-256 when offered) and binds a resource. ctx
// bounds the whole login. The error says which step failed.
func Dial(ctx context.Context, cfg DialConfig) (*Client, error) {
	if cfg.Addr == "" || cfg.Domain == "" || cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("xmpp login: address, domain, username and password are required")
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect to c2s %s: %w", cfg.Addr, err)
	}
	c := &Client{conn: nc}
	stop := c.bind(ctx)
	defer stop()
	if err := c.login(ctx, cfg); err != nil {
		_ = c.conn.Close()
		return nil, err
	}
	return c, nil
}

// bind makes ctx's deadline and cancellation interrupt the connection's I/O.
func (c *Client) bind(ctx context.Context) func() {
	dl, _ := ctx.Deadline()
	_ = c.conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

func (c *Client) login(ctx context.Context, cfg DialConfig) error {
	feats, err := c.open(cfg.Domain, "")
	if err != nil {
		return err
	}
	if feats.Child(nsTLS, "starttls") == nil {
		return errors.New("starttls: the server does not offer STARTTLS on c2s")
	}
	if _, err := io.WriteString(c.conn, "<starttls xmlns='"+nsTLS+"'/>"); err != nil {
		return fmt.Errorf("starttls: %w", err)
	}
	ans, err := c.next()
	if err != nil {
		return fmt.Errorf("starttls: %w", err)
	}
	if ans.XMLName.Local != "proceed" {
		return fmt.Errorf("starttls: the server answered <%s>", ans.XMLName.Local)
	}
	tc := &tls.Config{}
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = cfg.Domain
	}
	tconn := tls.Client(c.conn, tc)
	if err := tconn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake for %s: %w", cfg.Domain, err)
	}
	c.conn = tconn
	c.tls = tconn.ConnectionState()
	// The deadline of the raw connection still applies under TLS.
	from := cfg.Username + "@" + cfg.Domain
	if feats, err = c.open(cfg.Domain, from); err != nil {
		return err
	}
	c.addFeatures(feats)
	if err := c.authenticate(feats, cfg.Username, cfg.Password); err != nil {
		return err
	}
	if feats, err = c.open(cfg.Domain, from); err != nil {
		return err
	}
	c.addFeatures(feats)
	return c.bindResource(feats, cfg.Resource)
}

// open sends a stream header (again after STARTTLS and SASL) and reads the
// server's header and its stream features. from is the account's JID, sent
// once the stream is encrypted (RFC 6120 4.7.1; Prosody offers FAST only then).
func (c *Client) open(domain, from string) (*Element, error) {
	var hdr strings.Builder
	hdr.WriteString("<?xml version='1.0'?><stream:stream to='")
	_ = xml.EscapeText(&hdr, []byte(domain))
	if from != "" {
		hdr.WriteString("' from='")
		_ = xml.EscapeText(&hdr, []byte(from))
	}
	hdr.WriteString("' xmlns='" + nsClient + "' xmlns:stream='" + nsStream + "' version='1.0'>")
	if _, err := io.WriteString(c.conn, hdr.String()); err != nil {
		return nil, fmt.Errorf("open stream to %s: %w", domain, err)
	}
	c.dec = xml.NewDecoder(io.LimitReader(c.conn, maxRead))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, fmt.Errorf("read stream header from %s: %w", domain, err)
		}
		if st, ok := tok.(xml.StartElement); ok {
			if st.Name.Space != nsStream || st.Name.Local != "stream" {
				return nil, fmt.Errorf("open stream to %s: unexpected <%s>", domain, st.Name.Local)
			}
			break
		}
	}
	feats, err := c.next()
	if err != nil {
		return nil, fmt.Errorf("read stream features from %s: %w", domain, err)
	}
	if feats.XMLName.Space == nsStream && feats.XMLName.Local == "error" {
		return nil, fmt.Errorf("stream error from %s: %s", domain, streamCondition(feats))
	}
	if feats.XMLName.Local != "features" {
		return nil, fmt.Errorf("open stream to %s: expected stream features, got <%s>", domain, feats.XMLName.Local)
	}
	return feats, nil
}

func streamCondition(e *Element) string {
	for _, c := range e.Children {
		if c.XMLName.Local != "text" {
			return c.XMLName.Local
		}
	}
	return "no condition"
}

// addFeatures records the namespaces of the stream features, and of what
// SASL2 offers inline with authentication (Bind2, FAST: XEP-0388's <inline>).
func (c *Client) addFeatures(feats *Element) {
	for _, f := range feats.Children {
		c.features = append(c.features, f.XMLName.Space)
		if in := f.Child("", "inline"); f.XMLName.Local == "authentication" && in != nil {
			for _, i := range in.Children {
				c.features = append(c.features, i.XMLName.Space)
			}
		}
	}
}

// next reads the next top-level element of the stream. A stream error or the
// end of the stream is an error.
func (c *Client) next() (*Element, error) {
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			var e Element
			if err := c.dec.DecodeElement(&e, &t); err != nil {
				return nil, err
			}
			if e.XMLName.Space == nsStream && e.XMLName.Local == "error" {
				return nil, fmt.Errorf("stream error: %s", streamCondition(&e))
			}
			return &e, nil
		case xml.EndElement:
			return nil, errors.New("the server closed the stream")
		}
	}
}

func (c *Client) bindResource(feats *Element, resource string) error {
	if feats.Child(nsBind, "bind") == nil {
		return errors.New("bind: the server does not offer resource binding")
	}
	payload := "<bind xmlns='" + nsBind + "'/>"
	if resource != "" {
		payload = "<bind xmlns='" + nsBind + "'><resource>" + escape(resource) + "</resource></bind>"
	}
	res, err := c.iqNoCtx("set", "", payload)
	if err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	j := res.Find("bind", "jid")
	if j == nil || j.Text == "" {
		return errors.New("bind: the server sent no JID")
	}
	c.jid = strings.TrimSpace(j.Text)
	return nil
}

// JID is the full JID the server bound.
func (c *Client) JID() string { return c.jid }

// Bare is the bound JID without its resource.
func (c *Client) Bare() string {
	b, _, _ := strings.Cut(c.jid, "/")
	return b
}

// StreamFeatures returns the namespaces of every stream feature the server
// offered after STARTTLS and after authentication (duplicates removed).
func (c *Client) StreamFeatures() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range c.features {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// TLS returns the state of the STARTTLS connection.
func (c *Client) TLS() tls.ConnectionState { return c.tls }

// Mechanism is the SASL mechanism the login used.
func (c *Client) Mechanism() string { return c.mech }

// Close ends the stream and closes the connection.
func (c *Client) Close() error {
	var err error
	c.closeMu.Do(func() {
		_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c.conn, "</stream:stream>")
		err = c.conn.Close()
	})
	return err
}

// Send writes raw XML (one stanza) to the stream. The caller escapes what it puts in.
func (c *Client) Send(ctx context.Context, raw string) error {
	stop := c.bind(ctx)
	defer stop()
	if _, err := io.WriteString(c.conn, raw); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// IQ sends an <iq type=typ to=to> with payload (raw XML the caller escaped)
// and returns the result. An error answer is a *StanzaError; other stanzas
// that arrive meanwhile are kept for Await.
func (c *Client) IQ(ctx context.Context, typ, to, payload string) (*Element, error) {
	stop := c.bind(ctx)
	defer stop()
	return c.iqNoCtx(typ, to, payload)
}

func (c *Client) iqNoCtx(typ, to, payload string) (*Element, error) {
	id := newID()
	var b strings.Builder
	b.WriteString("<iq type='" + typ + "' id='" + id + "'")
	if to != "" {
		b.WriteString(" to='" + escape(to) + "'")
	}
	b.WriteString(">" + payload + "</iq>")
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		return nil, fmt.Errorf("send iq: %w", err)
	}
	for {
		st, err := c.next()
		if err != nil {
			return nil, fmt.Errorf("wait for iq answer: %w", err)
		}
		if st.XMLName.Local != "iq" || st.Attr("id") != id {
			c.queue = append(c.queue, *st)
			continue
		}
		switch st.Attr("type") {
		case "result":
			return st, nil
		case "error":
			return nil, stanzaError(st)
		}
		return nil, fmt.Errorf("iq answer of type %q", st.Attr("type"))
	}
}

// Await returns the first stanza (queued or read next) for which match is true;
// the others are kept. ctx bounds the wait.
func (c *Client) Await(ctx context.Context, match func(*Element) bool) (*Element, error) {
	for i := range c.queue {
		if match(&c.queue[i]) {
			st := c.queue[i]
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			return &st, nil
		}
	}
	stop := c.bind(ctx)
	defer stop()
	for {
		st, err := c.next()
		if err != nil {
			return nil, err
		}
		if match(st) {
			return st, nil
		}
		c.queue = append(c.queue, *st)
	}
}

// Take removes and returns the stanzas already read (and kept while waiting
// for something else) for which match is true. It does not read.
func (c *Client) Take(match func(*Element) bool) []Element {
	var out, keep []Element
	for _, st := range c.queue {
		if match(&st) {
			out = append(out, st)
		} else {
			keep = append(keep, st)
		}
	}
	c.queue = keep
	return out
}

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
