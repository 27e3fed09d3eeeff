// Package rungroup runs the long-running parts of a program as one group:
// every part gets the group's context, the group ends when its main part
// returns or any part fails, and Run returns only once every part has.
package rungroup

import (
	"context"
	"fmt"
	"sync"
)

// Group is a set of parts to run together. The zero value is an empty group;
// add parts with Go before Run, not after.
type Group struct {
	parts []part
}

type part struct {
	name string
	main bool
	run  func(ctx context.Context) error
}

// Go adds a part. A part that returns nil is done and the others go on (a
// one-shot task); a part that returns an error ends the group. A part must
// return soon after its context ends.
func (g *Group) Go(name string, run func(ctx context.Context) error) {
	g.parts = append(g.parts, part{name: name, run: run})
}

// Main adds the part whose end is the group's end, whatever it returns.
func (g *Group) Main(name string, run func(ctx context.Context) error) {
	g.parts = append(g.parts, part{name: name, main: true, run: run})
}

// Error is a part's failure, naming the part.
type Error struct {
	Part string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Part, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Run starts every part and waits for all of them. The context every part
// gets is cancelled when ctx ends, when the main part returns, or when a part
// fails. Run returns the first failure as an *Error (a part's error after
// cancellation is not a failure), or nil.
func (g *Group) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, p := range g.parts {
		wg.Go(func() {
			err := p.run(ctx)
			if err != nil && ctx.Err() == nil {
				once.Do(func() { first = &Error{Part: p.name, Err: err} })
			}
			if err != nil || p.main {
				cancel()
			}
		})
	}
	wg.Wait()
	return first
}
