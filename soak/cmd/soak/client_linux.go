package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// account is one XMPP account of a soak run.
type account struct{ JID, Password string }

// clientConfig says how to run the slixmpp client script.
type clientConfig struct {
	Python string // an interpreter with slixmpp (Debian's /usr/bin/python3)
	Script string // soak/clients/soak_client.py
}

// chatSummary is the chat client's last line.
type chatSummary struct {
	Sent        int    `json:"sent"`
	Received    int    `json:"received"`
	Missing     []int  `json:"missing"`
	Disconnects int    `json:"disconnects"`
	Sessions    int    `json:"sessions"`
	Error       string `json:"error"`
}

// chat is a running pair of clients: A sends numbered messages to B; both
// reconnect when dropped. Its reader goroutine is owned by chat and ends when
// the process's stdout closes; finish waits for it.
type chat struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer

	mu       sync.Mutex
	sessions map[string]int // session starts per client ("a", "b")
	offline  int
	summary  *chatSummary
	lines    []string
	changed  chan struct{}
	readDone chan struct{}
}

// startChat starts the pair against c2s port with the server's CA and waits up
// to d for both to be online.
func startChat(cc clientConfig, port int, ca string, a, b account, d time.Duration) (*chat, error) {
	c := &chat{sessions: map[string]int{}, changed: make(chan struct{}), readDone: make(chan struct{})}
	c.cmd = exec.Command(cc.Python, cc.Script, "--port", strconv.Itoa(port), "--ca", ca,
		"--timeout", strconv.Itoa(int(d.Seconds())), "chat", a.JID, a.Password, b.JID, b.Password)
	c.cmd.Stderr = &c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start chat client %s: %w", cc.Script, err)
	}
	go c.read(out)
	if err := c.waitSessions(1, d); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

func (c *chat) read(out io.Reader) {
	defer close(c.readDone)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var ev struct {
			Event    string `json:"event"`
			Who      string `json:"who"`
			Sessions int    `json:"sessions"`
			Sent     *int   `json:"sent"`
			Error    string `json:"error"`
		}
		line := sc.Text()
		_ = json.Unmarshal([]byte(line), &ev)
		c.mu.Lock()
		c.lines = append(c.lines, line)
		switch {
		case ev.Event == "online":
			c.sessions[ev.Who] = ev.Sessions
		case ev.Event == "offline":
			c.offline++
		case ev.Sent != nil || ev.Error != "":
			var s chatSummary
			_ = json.Unmarshal([]byte(line), &s)
			c.summary = &s
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
}

// counts returns the session starts of the fewer-connected client and the
// disconnects seen so far.
func (c *chat) counts() (minSessions, offline int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return min(c.sessions["a"], c.sessions["b"]), c.offline
}

// waitSessions waits up to d until both clients have started at least n sessions.
func (c *chat) waitSessions(n int, d time.Duration) error {
	deadline := time.After(d)
	for {
		c.mu.Lock()
		ok, summary, changed := min(c.sessions["a"], c.sessions["b"]) >= n, c.summary, c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		if summary != nil {
			return fmt.Errorf("chat client ended: %s", summary.Error)
		}
		select {
		case <-changed:
		case <-c.readDone:
			return fmt.Errorf("chat client exited while waiting for %d sessions each: %s", n, c.stderr.String())
		case <-deadline:
			return fmt.Errorf("chat clients not both online (session %d) within %s", n, d)
		}
	}
}

// finish tells the clients to stop, waits up to d for the summary, and reaps the process.
func (c *chat) finish(d time.Duration) (chatSummary, error) {
	_, _ = io.WriteString(c.stdin, "stop\n")
	_ = c.stdin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	select {
	case <-c.readDone:
	case <-ctx.Done():
		c.kill()
		return chatSummary{}, fmt.Errorf("chat client gave no summary within %s", d)
	}
	_ = c.cmd.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.summary == nil {
		return chatSummary{}, fmt.Errorf("chat client ended without a summary: %s", c.stderr.String())
	}
	if c.summary.Error != "" {
		return *c.summary, fmt.Errorf("chat client: %s", c.summary.Error)
	}
	return *c.summary, nil
}

func (c *chat) kill() {
	_ = c.cmd.Process.Kill()
	<-c.readDone
	_ = c.cmd.Wait()
}

// logins logs each account in with a real client and returns the accounts
// that could not log in (with the reason).
func logins(cc clientConfig, port int, ca string, users []account, d time.Duration) ([]string, error) {
	args := []string{cc.Script, "--port", strconv.Itoa(port), "--ca", ca, "--timeout", "10", "logins"}
	for _, u := range users {
		args = append(args, u.JID, u.Password)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, cc.Python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output() // the per-account lines say what failed
	var failed []string
	ok := 0
	for _, line := range bytes.Split(out, []byte("\n")) {
		var r struct {
			JID   string `json:"jid"`
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		if json.Unmarshal(line, &r) != nil {
			continue
		}
		switch {
		case r.OK:
			ok++
		case r.JID != "":
			failed = append(failed, r.JID+": "+r.Error)
		default:
			return nil, fmt.Errorf("login client: %s", r.Error)
		}
	}
	if ok+len(failed) != len(users) {
		return failed, fmt.Errorf("login client reported %d of %d accounts (%v): %s", ok+len(failed), len(users), ctx.Err(), stderr.String())
	}
	return failed, nil
}
