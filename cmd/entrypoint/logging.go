package main

import (
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// newLogger builds the one root logger: format "json" or "console" ("" picks
// console on a terminal, json otherwise) and level debug|info|warn|error ("" is
// info). It writes to w (the entrypoint's stderr).
func newLogger(format, level string, w io.Writer) *zap.Logger {
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "console"
		}
	}
	lvl := zapcore.InfoLevel
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			lvl = zapcore.InfoLevel
		}
	}
	var enc zapcore.Encoder
	if format == "console" {
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewConsoleEncoder(cfg)
	} else {
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core).Named("entrypoint")
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// rootLogger makes the root logger from the settings' PROSODY_LOG_FORMAT and
// PROSODY_LOG_LEVEL; level, when not "", wins over the latter (verbs that
// are quiet by default).
func rootLogger(w io.Writer, level string) func(*settings.Settings) *zap.Logger {
	return func(st *settings.Settings) *zap.Logger {
		if level == "" {
			level = st.LogLevel
		}
		return newLogger(st.LogFormat, level, w)
	}
}
