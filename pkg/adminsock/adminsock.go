// Package adminsock is a client for Prosody's admin socket: the unix socket that
// mod_admin_socket opens (option admin_socket, default <data_path>/prosody.sock) and that
// `prosodyctl shell` talks to. It lets the entrypoint run admin shell commands such as
// config:reload() or module:load("x") and get Prosody's own answer, instead of sending SIGHUP
// and guessing.
//
// The protocol is a small XML stream: the client opens
// <stream:stream xmlns='xmpp:prosody.im/admin'>, sends <repl-input>command</repl-input>, and
// Prosody answers with zero or more <repl-output> lines and one <repl-result>, whose
// type='error' marks a failed command. The server needs "admin_shell" in modules_enabled, and
// the socket is owned by the prosody user, so only root or that user can connect.
package adminsock

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Limits that bound what one Exec reads, so a misbehaving peer cannot make the client
// allocate without end.
const (
	// maxTextBytes bounds the text of one <repl-output> or <repl-result> element.
	maxTextBytes = 1 << 20
	// maxOutputLines bounds the number of <repl-output> elements of one command.
	maxOutputLines = 100000
	// maxReadBytes bounds the bytes read from the socket per Exec (and for the stream header).
	maxReadBytes = 16 << 20
)

const (
	adminNS  = "xmpp:prosody.im/admin"
	streamNS = "http://etherx.jabber.org/streams"
	// streamHeader is what `prosodyctl shell` sends to open a session.
	streamHeader = "<?xml version='1.0'?><stream:stream xmlns:stream='" + streamNS +
		"' xmlns='" + adminNS + "' version='1.0'>"
)

// ErrBroken is wrapped by every error of a Conn whose stream can no longer be trusted (a read
// or write failed, a deadline passed in the middle of a reply, or the peer broke the
// protocol). A broken Conn fails every later Exec; Close it and Dial again.
var ErrBroken = errors.New("admin socket connection broken")

// Result is Prosody's answer to one command.
type Result struct {
	// OK is false when the <repl-result> had type='error' (the command failed: a Lua error, a
	// parser error on config:reload(), a module that would not load…).
	OK bool
	// Output holds the <repl-output> lines printed by the command, in order, without trailing
	// newlines. Output that Prosody sent without an end of line (eol='0') is joined with the
	// next piece.
	Output []string
	// Message is the text of <repl-result> as Prosody sent it, e.g.
	// "OK: Config reloaded (you may need to reload modules to take effect)" or
	// "Error: parser: /etc/prosody/prosody.cfg.lua:14: unexpected symbol near <eof>".
	Message string
}

// Conn is one session on Prosody's admin socket. Its methods are safe for concurrent use;
// commands are sent one at a time. The caller must Close it.
type Conn struct {
	path string
	nc   net.Conn
	lim  *budgetReader
	dec  *xml.Decoder

	mu     sync.Mutex // serialises Exec and guards broken
	broken error
}

// Dial connects to the admin socket at path and opens the admin stream. The context bounds
// the whole handshake (connect, send the header, read Prosody's header); it is not kept.
func Dial(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("dial prosody admin socket %s (is admin_shell in modules_enabled, and is the caller root or the prosody user?): %w", path, err)
	}
	lim := &budgetReader{r: nc}
	c := &Conn{path: path, nc: nc, lim: lim}
	c.dec = xml.NewDecoder(lim)
	c.dec.Strict = true

	err = c.withDeadline(ctx, func() error {
		lim.reset(maxReadBytes)
		if _, err := io.WriteString(nc, streamHeader); err != nil {
			return fmt.Errorf("send stream header: %w", err)
		}
		return c.readStreamHeader()
	})
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("open admin stream on %s: %w", path, err)
	}
	return c, nil
}

// Close closes the connection. It does not wait for a running Exec, which then fails.
func (c *Conn) Close() error {
	// Closing the stream politely lets Prosody log a clean disconnect; the error of the
	// write does not matter since the socket is closed right after.
	_ = c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = io.WriteString(c.nc, "</stream:stream>")
	if err := c.nc.Close(); err != nil {
		return fmt.Errorf("close admin socket %s: %w", c.path, err)
	}
	return nil
}

// Exec runs one admin shell command (for example `config:reload()`) and returns Prosody's
// answer. A command that fails inside Prosody gives OK false and a nil error; the error is
// non-nil only when the socket or the protocol broke, or ctx ended first (then it wraps
// ErrBroken and ctx.Err()). The command is XML-escaped; it is Lua evaluated by Prosody's admin
// shell, so callers must quote values they put into it (the helpers of this package do).
func (c *Conn) Exec(ctx context.Context, cmd string) (Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return Result{}, c.broken
	}
	if err := ctx.Err(); err != nil {
		// Nothing was sent, so the stream is still in step.
		return Result{}, fmt.Errorf("run %s on admin socket %s: %w", commandName(cmd), c.path, err)
	}
	var res Result
	err := c.withDeadline(ctx, func() error {
		c.lim.reset(maxReadBytes)
		var buf bytes.Buffer
		buf.WriteString("<repl-input repl='0'>")
		if err := xml.EscapeText(&buf, []byte(cmd)); err != nil {
			return fmt.Errorf("escape command: %w", err)
		}
		buf.WriteString("</repl-input>")
		if _, err := c.nc.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("send command: %w", err)
		}
		var err error
		res, err = c.readResult()
		return err
	})
	if err != nil {
		c.broken = fmt.Errorf("%w: %s: command %s: %w", ErrBroken, c.path, commandName(cmd), err)
		return Result{}, c.broken
	}
	return res, nil
}

// commandName is the part of cmd that errors may show: the function called, never its
// arguments, which could hold a secret (user:create("x", "password")).
func commandName(cmd string) string {
	name, _, _ := strings.Cut(strings.TrimSpace(cmd), "(")
	if len(name) > 40 {
		name = name[:40] + "…"
	}
	return name
}

// withDeadline runs fn with the socket deadline taken from ctx; cancelling ctx interrupts a
// blocked read or write. When ctx ended, its error is returned in place of the I/O timeout.
func (c *Conn) withDeadline(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, _ := ctx.Deadline() // zero time means no deadline
	if err := c.nc.SetDeadline(dl); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() {
		// A deadline in the past wakes any blocked Read/Write at once.
		_ = c.nc.SetDeadline(time.Unix(1, 0))
	})
	err := fn()
	stop()
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	if !dl.IsZero() && errors.Is(err, os.ErrDeadlineExceeded) {
		// The socket deadline can pass a moment before ctx's own timer marks it done.
		return fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
	}
	return err
}

// readStreamHeader consumes tokens up to Prosody's <stream:stream> start tag.
func (c *Conn) readStreamHeader() error {
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return fmt.Errorf("read stream header: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == streamNS && t.Name.Local == "stream" {
				return nil
			}
			return fmt.Errorf("unexpected element <%s> before the stream header", t.Name.Local)
		case xml.ProcInst, xml.CharData, xml.Comment, xml.Directive:
			// The XML declaration and whitespace.
		default:
			return fmt.Errorf("unexpected %T before the stream header", tok)
		}
	}
}

// readResult reads elements until the <repl-result> that ends the current command.
func (c *Conn) readResult() (Result, error) {
	res := Result{Output: []string{}}
	var partial strings.Builder // output sent with eol='0', waiting for the rest of its line
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return Result{}, fmt.Errorf("read reply: %w", err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			// Only </stream:stream> can end at this level.
			return Result{}, errors.New("prosody closed the admin stream")
		case xml.StartElement:
			switch {
			case t.Name.Local == "repl-output":
				text, err := c.readText(t)
				if err != nil {
					return Result{}, err
				}
				partial.WriteString(text)
				if attr(t, "eol") == "0" {
					if partial.Len() > maxTextBytes {
						return Result{}, fmt.Errorf("output line longer than %d bytes", maxTextBytes)
					}
					continue
				}
				if len(res.Output) >= maxOutputLines {
					return Result{}, fmt.Errorf("more than %d output lines", maxOutputLines)
				}
				res.Output = append(res.Output, partial.String())
				partial.Reset()
			case t.Name.Local == "repl-result":
				text, err := c.readText(t)
				if err != nil {
					return Result{}, err
				}
				if partial.Len() > 0 {
					res.Output = append(res.Output, partial.String())
				}
				res.OK = attr(t, "type") != "error"
				res.Message = text
				return res, nil
			case t.Name.Local == "repl-request-input":
				// The command wants interactive input (a password); there is no user here.
				if err := c.cancelInput(t); err != nil {
					return Result{}, err
				}
			case t.Name.Space == streamNS && t.Name.Local == "error":
				text, _ := c.readText(t)
				return Result{}, fmt.Errorf("stream error from prosody: %q", text)
			default:
				if err := c.dec.Skip(); err != nil {
					return Result{}, fmt.Errorf("skip <%s>: %w", t.Name.Local, err)
				}
			}
		}
	}
}

// readText returns the character data of the element just started, up to its end tag;
// child elements are flattened into their text.
func (c *Conn) readText(start xml.StartElement) (string, error) {
	var b strings.Builder
	depth := 1
	for depth > 0 {
		tok, err := c.dec.Token()
		if err != nil {
			return "", fmt.Errorf("read <%s>: %w", start.Name.Local, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if b.Len()+len(t) > maxTextBytes {
				return "", fmt.Errorf("<%s> longer than %d bytes", start.Name.Local, maxTextBytes)
			}
			b.Write(t)
		}
	}
	return b.String(), nil
}

// cancelInput refuses a <repl-request-input>, the way a client without a terminal would.
func (c *Conn) cancelInput(start xml.StartElement) error {
	if err := c.dec.Skip(); err != nil {
		return fmt.Errorf("skip <repl-request-input>: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString("<repl-requested-input status='cancel' type='")
	_ = xml.EscapeText(&buf, []byte(attr(start, "type")))
	buf.WriteString("' id='")
	_ = xml.EscapeText(&buf, []byte(attr(start, "id")))
	buf.WriteString("'/>")
	if _, err := c.nc.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("refuse input request: %w", err)
	}
	return nil
}

func attr(e xml.StartElement, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// budgetReader fails reads once a per-command byte budget is spent.
type budgetReader struct {
	r    io.Reader
	left int64
}

func (b *budgetReader) reset(n int64) { b.left = n }

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("reply larger than %d bytes", maxReadBytes)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}
