package xmppcheck

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"
)

// authenticate runs SASL SCRAM (RFC 5802) without channel binding: SCRAM-SHA-256
// when the server offers it, else SCRAM-SHA-1. The server's signature is
// checked, so a server that does not know the password cannot pass.
func (c *Client) authenticate(feats *Element, user, pass string) error {
	mechs := feats.Child(nsSASL, "mechanisms")
	if mechs == nil {
		return errors.New("sasl: the server offers no SASL mechanisms after STARTTLS")
	}
	var offered []string
	for _, m := range mechs.Children {
		offered = append(offered, strings.TrimSpace(m.Text))
	}
	var newHash func() hash.Hash
	switch {
	case slices.Contains(offered, "SCRAM-SHA-256"):
		c.mech, newHash = "SCRAM-SHA-256", sha256.New
	case slices.Contains(offered, "SCRAM-SHA-1"):
		c.mech, newHash = "SCRAM-SHA-1", sha1.New
	default:
		return fmt.Errorf("sasl: no SCRAM mechanism offered (offered: %s)", strings.Join(offered, ", "))
	}
	nonce := make([]byte, 18)
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return fmt.Errorf("sasl: nonce: %w", err)
	}
	cnonce := base64.RawStdEncoding.EncodeToString(nonce)
	firstBare := "n=" + scramName(user) + ",r=" + cnonce
	if err := c.sendSASL("auth", c.mech, "n,,"+firstBare); err != nil {
		return err
	}
	serverFirst, err := c.readSASL("challenge")
	if err != nil {
		return err
	}
	attrs := scramAttrs(serverFirst)
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	iters, ierr := strconv.Atoi(attrs["i"])
	if err != nil || ierr != nil || iters < 1 || !strings.HasPrefix(attrs["r"], cnonce) {
		return fmt.Errorf("sasl %s: unreadable server challenge", c.mech)
	}
	salted, err := pbkdf2.Key(newHash, pass, salt, iters, newHash().Size())
	if err != nil {
		return fmt.Errorf("sasl %s: %w", c.mech, err)
	}
	mac := func(key []byte, s string) []byte {
		h := hmac.New(newHash, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	h := newHash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	finalNoProof := "c=biws,r=" + attrs["r"]
	authMsg := firstBare + "," + serverFirst + "," + finalNoProof
	sig := mac(storedKey, authMsg)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	if err := c.sendSASL("response", "", finalNoProof+",p="+base64.StdEncoding.EncodeToString(proof)); err != nil {
		return err
	}
	serverFinal, err := c.readSASL("success")
	if err != nil {
		return err
	}
	want := base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), authMsg))
	if subtle.ConstantTimeCompare([]byte(scramAttrs(serverFinal)["v"]), []byte(want)) != 1 {
		return fmt.Errorf("sasl %s: the server's signature is wrong: it does not know the password", c.mech)
	}
	return nil
}

func (c *Client) sendSASL(elem, mech, payload string) error {
	var b strings.Builder
	b.WriteString("<" + elem + " xmlns='" + nsSASL + "'")
	if mech != "" {
		b.WriteString(" mechanism='" + mech + "'")
	}
	b.WriteString(">" + base64.StdEncoding.EncodeToString([]byte(payload)) + "</" + elem + ">")
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		return fmt.Errorf("sasl %s: %w", c.mech, err)
	}
	return nil
}

// readSASL reads the next SASL element; want is "challenge" or "success".
func (c *Client) readSASL(want string) (string, error) {
	e, err := c.next()
	if err != nil {
		return "", fmt.Errorf("sasl %s: %w", c.mech, err)
	}
	if e.XMLName.Local == "failure" {
		cond := "not-authorized"
		for _, ch := range e.Children {
			if ch.XMLName.Local != "text" {
				cond = ch.XMLName.Local
			}
		}
		return "", fmt.Errorf("sasl %s: authentication failed: %s", c.mech, cond)
	}
	if e.XMLName.Local != want {
		return "", fmt.Errorf("sasl %s: expected <%s>, got <%s>", c.mech, want, e.XMLName.Local)
	}
	text := strings.TrimSpace(e.Text)
	if text == "=" {
		text = ""
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return "", fmt.Errorf("sasl %s: <%s> is not base64", c.mech, want)
	}
	return string(b), nil
}

// scramAttrs splits "a=1,b=2" into a map; values keep any '=' they hold.
func scramAttrs(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && len(k) == 1 {
			m[k] = v
		}
	}
	return m
}

// scramName escapes ',' and '=' in a SCRAM user name (RFC 5802 5.1).
func scramName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}
