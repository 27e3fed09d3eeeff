package initsteps

import (
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// NewLogger builds the one root logger, named "entrypoint": format "json" or
// "console" ("" picks console on a terminal, json otherwise) and level
// debug|info|warn|error ("" or anything else is info). It writes to w.
func NewLogger(format, level string, w io.Writer) *zap.Logger {
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "console"
		}
	}
	lvl := zapcore.InfoLevel
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		lvl = zapcore.InfoLevel
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
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)).Named("entrypoint")
}

// RootLogger is a Config.Logger: the root logger from PROSODY_LOG_FORMAT and
// PROSODY_LOG_LEVEL, writing to w. level, when not "", wins over the
// latter (verbs that are quiet by default).
func RootLogger(w io.Writer, level string) func(*settings.Settings) *zap.Logger {
	return func(st *settings.Settings) *zap.Logger {
		if level == "" {
			level = st.LogLevel
		}
		return NewLogger(st.LogFormat, level, w)
	}
}
