package health

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"
)

const (
	nsStream       = "http://etherx.jabber.org/streams"
	nsStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams"
	// maxProbeRead bounds what one probe reads: Prosody's features are under 2 KiB.
	maxProbeRead = 64 * 1024
)

// ProbeC2S opens an XMPP client stream to domain on the c2s listener at addr and
// reads until </stream:features> or a stream error, then sends </stream:stream>
// and closes. Like Kubernetes' probes it reports a result and a detail:
//
//   - ready is true when the server sent stream features that offer a way in
//     (<starttls>, SASL <mechanisms> or SASL2 <authentication>) for domain;
//   - detail says what was seen ("features: starttls, mechanisms") or why it is
//     not ready ("stream error: host-unknown", "connect 127.0.0.1:5222: connection
//     refused", a timeout);
//   - err is non-nil only when the check itself cannot run (empty addr or domain),
//     never because the server is unhealthy.
//
// The whole probe, connect included, is bounded by timeout (and ctx), and reads at
// most 64 KiB.
func ProbeC2S(ctx context.Context, addr, domain string, timeout time.Duration) (ready bool, detail string, err error) {
	if addr == "" || domain == "" || timeout <= 0 {
		return false, "", fmt.Errorf("probe c2s: need an address, a domain and a positive timeout (got addr %q, domain %q, timeout %s)", addr, domain, timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, "connect " + addr + ": " + shortNetErr(err), nil
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return false, "set deadline on " + addr + ": " + err.Error(), nil
	}
	// ctx may end before the deadline (Monitor shutdown): unblock I/O at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	var hdr strings.Builder
	hdr.WriteString("<?xml version='1.0'?><stream:stream to='")
	_ = xml.EscapeText(&hdr, []byte(domain))
	hdr.WriteString("' xmlns='jabber:client' xmlns:stream='" + nsStream + "' version='1.0'>")
	if _, err := io.WriteString(conn, hdr.String()); err != nil {
		return false, "send stream header to " + addr + ": " + shortNetErr(err), nil
	}
	ready, detail = readFeatures(xml.NewDecoder(io.LimitReader(conn, maxProbeRead)), domain)
	// Close the stream politely so Prosody logs a normal disconnect; errors do not matter.
	_, _ = io.WriteString(conn, "</stream:stream>")
	return ready, detail, nil
}

// readFeatures reads one stream opening and its first child element.
func readFeatures(dec *xml.Decoder, domain string) (bool, string) {
	depth := 0
	inFeatures := false
	var features []string
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return false, "stream closed before features"
			}
			return false, "read stream: " + shortNetErr(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				if t.Name.Space != nsStream || t.Name.Local != "stream" {
					return false, fmt.Sprintf("unexpected root element <%s>", t.Name.Local)
				}
				for _, a := range t.Attr {
					if a.Name.Local == "from" && a.Name.Space == "" && !strings.EqualFold(a.Value, domain) {
						return false, fmt.Sprintf("stream from %q, want %q", a.Value, domain)
					}
				}
			case depth == 2 && t.Name.Space == nsStream && t.Name.Local == "features":
				inFeatures = true
			case depth == 2 && t.Name.Space == nsStream && t.Name.Local == "error":
				return false, "stream error: " + streamErrorCondition(dec)
			case depth == 2:
				return false, fmt.Sprintf("unexpected element <%s> before features", t.Name.Local)
			case depth == 3 && inFeatures:
				features = append(features, t.Name.Local)
			}
		case xml.EndElement:
			depth--
			if depth == 1 && inFeatures {
				detail := "features: " + strings.Join(features, ", ")
				if slices.Contains(features, "starttls") || slices.Contains(features, "mechanisms") || slices.Contains(features, "authentication") {
					return true, detail
				}
				return false, detail + " (no starttls, mechanisms or authentication: clients cannot log in)"
			}
			if depth <= 0 {
				return false, "stream closed before features"
			}
		}
	}
}

// streamErrorCondition returns the defined condition inside <stream:error>.
func streamErrorCondition(dec *xml.Decoder) string {
	for {
		tok, err := dec.Token()
		if err != nil {
			return "unreadable"
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "text" {
				return t.Name.Local
			}
		case xml.EndElement:
			if t.Name.Local == "error" {
				return "no condition"
			}
		}
	}
}

// shortNetErr drops the repeated "dial tcp ...:" prefix chain but keeps the cause.
func shortNetErr(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		if op.Timeout() {
			return "timeout"
		}
		return op.Err.Error()
	}
	return err.Error()
}
