package health

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// Bounds of ProsodyLog: it keeps the last logTailLines error lines, each cut at
// logLineBytes.
const (
	logTailLines = 64
	logLineBytes = 2048
)

// ProsodyLog is the writer for Prosody's stdout (its console log): it passes
// every byte on to Out and keeps Prosody's last error lines, so the module
// check can name Prosody's own reason for a module that did not load. Create
// it with NewProsodyLog; it is safe for concurrent use.
type ProsodyLog struct {
	out io.Writer

	mu      sync.Mutex
	partial []byte   // the start of a line not ended yet (at most logLineBytes)
	errors  []string // ring of the last error lines, oldest first
}

// NewProsodyLog returns a ProsodyLog that writes through to out (nil: discard).
func NewProsodyLog(out io.Writer) *ProsodyLog {
	if out == nil {
		out = io.Discard
	}
	return &ProsodyLog{out: out}
}

// Write passes p to Out and records the error lines it ends. It never
// fails: an Out that cannot be written (a closed stdout) must not stop the
// supervisor draining the pipe, or Prosody would block on its next log line.
// Every line of Prosody's log passes here: a line that is not an error is
// looked at in place, never copied.
func (l *ProsodyLog) Write(p []byte) (int, error) {
	_, _ = l.out.Write(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			l.partial = appendCapped(l.partial, rest)
			break
		}
		line := rest[:min(i, logLineBytes)]
		if len(l.partial) > 0 {
			l.partial = appendCapped(l.partial, rest[:i])
			line, l.partial = l.partial, l.partial[:0]
		}
		l.line(line)
		rest = rest[i+1:]
	}
	return len(p), nil
}

func appendCapped(dst, src []byte) []byte {
	if room := logLineBytes - len(dst); room < len(src) {
		src = src[:max(room, 0)]
	}
	return append(dst, src...)
}

// line keeps one complete line if it is an error: Prosody's console format is
// "source<padding> level<TAB>message". Only a kept line is copied.
func (l *ProsodyLog) line(b []byte) {
	head, _, ok := bytes.Cut(b, []byte{'\t'})
	if !ok || !bytes.HasSuffix(bytes.TrimSpace(head), []byte(" error")) {
		return
	}
	if len(l.errors) == logTailLines {
		l.errors = append(l.errors[:0], l.errors[1:]...)
	}
	l.errors = append(l.errors, string(bytes.TrimSpace(b)))
}

// ErrorsAbout returns the kept error lines that name module (as 'name',
// "name" or mod_name), oldest first.
func (l *ProsodyLog) ErrorsAbout(module string) []string {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	quoted, dquoted, file := "'"+module+"'", "\""+module+"\"", "mod_"+module
	var out []string
	for _, e := range l.errors {
		if strings.Contains(e, quoted) || strings.Contains(e, dquoted) || strings.Contains(e, file) {
			out = append(out, e)
		}
	}
	return out
}
