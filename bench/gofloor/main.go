// Command gofloor is a benchmark throwaway, built by bench/run and never
// shipped: a Go binary that links the entrypoint's four libraries (envconfig,
// client_golang, zap, fsnotify) and does nothing but what an init must: it
// registers for signals first, starts its argument, forwards signals to it,
// waits and exits with its code. Beside `tini -- true` and
// `entrypoint -- true` it shows the floor of exec overhead that a Go init
// linking those libraries cannot go below.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/fsnotify/fsnotify"
	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
)

// settings is read like the entrypoint's (one variable), so envconfig runs.
type settings struct {
	LogFormat string `envconfig:"LOG_FORMAT" default:"json"`
}

func main() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	if len(os.Args) < 3 || os.Args[1] != "--" {
		fmt.Fprintln(os.Stderr, "usage: gofloor -- CMD [ARG...]")
		os.Exit(2)
	}
	var s settings
	if err := envconfig.Process("PROSODY", &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(78)
	}
	// Touch each library once so none is dropped by the linker.
	log := zap.NewNop()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	_ = fsnotify.Create
	c := exec.Command(os.Args[2], os.Args[3:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := c.Start(); err != nil {
		log.Error("start", zap.Error(err))
		os.Exit(127)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-sigs:
				if sig != syscall.SIGCHLD && sig != syscall.SIGURG && sig != syscall.SIGPIPE {
					_ = c.Process.Signal(sig)
				}
			case <-done:
				return
			}
		}
	}()
	err := c.Wait()
	close(done)
	if st, ok := c.ProcessState.Sys().(syscall.WaitStatus); ok && st.Signaled() {
		os.Exit(128 + int(st.Signal()))
	}
	if err != nil && c.ProcessState == nil {
		os.Exit(1)
	}
	os.Exit(c.ProcessState.ExitCode())
}
