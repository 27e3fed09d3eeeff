package initsteps

import (
	"context"
	"errors"
	"testing"
	"time"
)

type recorder struct{ names []string }

func (r *recorder) StageDone(name string, _ time.Duration, _ error) { r.names = append(r.names, name) }

func TestRunOrderAndFirstFailureStops(t *testing.T) {
	var ran []string
	boom := errors.New("boom")
	stage := func(name string, err error) Stage[*[]string] {
		return Stage[*[]string]{Name: name, Run: func(_ context.Context, s *[]string) error {
			*s = append(*s, name)
			return err
		}}
	}
	obs := &recorder{}
	res, err := Run(context.Background(), []Stage[*[]string]{
		stage("a", nil), stage("b", boom), stage("c", nil),
	}, &ran, nil, obs)
	if got := len(ran); got != 2 || ran[0] != "a" || ran[1] != "b" {
		t.Fatalf("ran %v, want [a b]", ran)
	}
	var se *StageError
	if !errors.As(err, &se) || se.Stage != "b" || !errors.Is(err, boom) {
		t.Fatalf("err = %v, want StageError for b wrapping boom", err)
	}
	if len(res) != 2 || res[1].Err == nil {
		t.Fatalf("results %+v", res)
	}
	if len(obs.names) != 2 {
		t.Fatalf("observer saw %v", obs.names)
	}
}

func TestRunStopsOnCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	_, err := Run(ctx, []Stage[int]{{Name: "x", Run: func(context.Context, int) error { ran = true; return nil }}}, 0, nil, nil)
	if err == nil || ran {
		t.Fatalf("stage ran=%v err=%v; want not run and an error", ran, err)
	}
}
