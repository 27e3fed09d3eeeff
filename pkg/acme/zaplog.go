package acme

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapHandler is a slog.Handler that writes lego's records into a zap
// logger, every one at debug level: lego narrates each step, and this
// package logs the outcomes itself.
type zapHandler struct {
	log   *zap.Logger
	attrs []zap.Field
}

func (h zapHandler) Enabled(context.Context, slog.Level) bool {
	return h.log.Core().Enabled(zapcore.DebugLevel)
}

func (h zapHandler) Handle(_ context.Context, r slog.Record) error {
	fields := append([]zap.Field{}, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, zap.String(a.Key, a.Value.String()))
		return true
	})
	h.log.Debug(r.Message, fields...)
	return nil
}

func (h zapHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := zapHandler{log: h.log, attrs: append([]zap.Field{}, h.attrs...)}
	for _, a := range attrs {
		n.attrs = append(n.attrs, zap.String(a.Key, a.Value.String()))
	}
	return n
}

func (h zapHandler) WithGroup(string) slog.Handler { return h }
