// Package initsteps runs the entrypoint's init stages: an ordered list of named
// steps, each timed, logged and reported, where the first failure stops start-up.
//
// The order is the order of the slice given to Run: there is no registry and no
// priority. Stages share what they produce through the State the caller owns.
package initsteps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Stage is one named init step.
type Stage[S any] struct {
	// Name is short, lowercase and stable: it labels logs and metrics.
	Name string
	// Run does the step's work. It may read and extend the state. An error
	// stops start-up; it should say what failed and what to do.
	Run func(ctx context.Context, state S) error
}

// Observer is told how each stage went. Implementations must be safe to call
// from the goroutine running the stages.
type Observer interface {
	StageDone(name string, d time.Duration, err error)
}

// Result records one stage's outcome.
type Result struct {
	Name     string
	Duration time.Duration
	Err      error
}

// StageError is the error Run returns when a stage fails: it names the stage
// and wraps the stage's own error.
type StageError struct {
	Stage string
	Err   error
}

func (e *StageError) Error() string { return fmt.Sprintf("stage %s: %v", e.Stage, e.Err) }
func (e *StageError) Unwrap() error { return e.Err }

// Run runs stages in order until one fails or ctx ends. It returns the results of
// the stages that ran (the failed one last) and, on failure, a *StageError.
// obs may be nil.
func Run[S any](ctx context.Context, stages []Stage[S], state S, log *zap.Logger, obs Observer) ([]Result, error) {
	if log == nil {
		log = zap.NewNop()
	}
	results := make([]Result, 0, len(stages))
	for _, st := range stages {
		if err := ctx.Err(); err != nil {
			return results, &StageError{Stage: st.Name, Err: fmt.Errorf("not started: %w", err)}
		}
		start := time.Now()
		err := st.Run(ctx, state)
		d := time.Since(start)
		results = append(results, Result{Name: st.Name, Duration: d, Err: err})
		if obs != nil {
			obs.StageDone(st.Name, d, err)
		}
		if err != nil {
			var se *StageError
			if errors.As(err, &se) {
				return results, err
			}
			return results, &StageError{Stage: st.Name, Err: err}
		}
		log.Debug("stage done", zap.String("stage", st.Name), zap.Duration("duration", d))
	}
	return results, nil
}
