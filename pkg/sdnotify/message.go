// Package sdnotify receives the sd_notify protocol from a supervised child: the
// datagrams a service manager gets on NOTIFY_SOCKET (see sd_notify(3)).
//
// Prosody 13 sends READY=1 when the server has started, "RELOADING=1\nMONOTONIC_USEC=N"
// when a config reload begins, READY=1 again after a successful reload (nothing after a
// failed one) and STOPPING=1 at shutdown. This package only listens and parses; what a
// message means for readiness is decided by its caller.
package sdnotify

import (
	"fmt"
	"strconv"
	"strings"
)

// Message is one parsed notification datagram.
type Message struct {
	// Ready is true when the datagram carried READY=1.
	Ready bool
	// Reloading is true when the datagram carried RELOADING=1.
	Reloading bool
	// Stopping is true when the datagram carried STOPPING=1.
	Stopping bool
	// Status is the free-form STATUS= text, empty when absent.
	Status string
	// MonotonicUsec is MONOTONIC_USEC= (CLOCK_MONOTONIC in microseconds), 0 when absent.
	MonotonicUsec uint64
	// Fields holds every KEY=VALUE line as sent, including the ones above. Never nil.
	Fields map[string]string
	// PID is the sender's process id as reported by the kernel (SCM_CREDENTIALS),
	// 0 when it was not available.
	PID int
}

// Parse parses one datagram: newline-separated KEY=VALUE assignments, as in
// sd_notify(3). Empty lines are ignored. A line without "=", an empty key, or a
// malformed MONOTONIC_USEC is an error; the message is still returned with every
// line that did parse, so a caller may log the error and use the rest.
func Parse(b []byte) (Message, error) {
	msg := Message{Fields: map[string]string{}}
	var bad []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			bad = append(bad, strconv.Quote(line))
			continue
		}
		msg.Fields[key] = value
		switch key {
		case "READY":
			msg.Ready = value == "1"
		case "RELOADING":
			msg.Reloading = value == "1"
		case "STOPPING":
			msg.Stopping = value == "1"
		case "STATUS":
			msg.Status = value
		case "MONOTONIC_USEC":
			n, err := strconv.ParseUint(value, 10, 64)
			if err != nil {
				bad = append(bad, strconv.Quote(line))
				continue
			}
			msg.MonotonicUsec = n
		}
	}
	if len(bad) > 0 {
		return msg, fmt.Errorf("parse notify datagram: bad lines %s (want KEY=VALUE; MONOTONIC_USEC a decimal integer)", strings.Join(bad, ", "))
	}
	return msg, nil
}
