package e2e

import (
	"errors"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// A verb that runs to completion keeps the default signal behaviour: SIGTERM
// (docker stop, a CI timeout) or Ctrl-C ends it at once, instead of being
// caught by the handlers PID 1 needs. The healthcheck here waits on a server
// that accepts and never answers, so only the signal can end it in time.
func TestVerbsDieOfSIGTERMAndSIGINT(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(entrypointBin, "healthcheck", "--timeout", "60s", "--url", "http://"+ln.Addr().String()+"/readyz")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select { // the verb is under way: it waits for an answer that never comes
		case c := <-accepted:
			defer c.Close()
		case <-time.After(10 * time.Second):
			t.Fatal("healthcheck never connected")
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != sig {
				t.Errorf("healthcheck after %v: %v; want it killed by the signal", sig, err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("healthcheck still running 10s after %v", sig)
		}
	}
}
