// Package shutdownlog keeps a graceful shutdown out of the error log. Once the manager has
// been told to stop (SIGTERM in a rolling update or a leader hand-over), work still under
// way is cancelled on purpose: an event being written, a request in flight. Errors caused by
// that cancellation are logged at info level, saying so, instead of at error level with a
// stack trace: operators alert on error-level lines, and nothing is wrong.
package shutdownlog

import (
	"context"
	"errors"
	"slices"

	"github.com/go-logr/logr"
)

// New returns base, except that once stopping is done, the errors a shutdown causes are
// logged at info level with the error text and "shutdown": true.
func New(base logr.Logger, stopping context.Context) logr.Logger {
	// One more frame (this sink) between the caller and base's sink.
	return logr.New(&sink{inner: base.WithCallDepth(1).GetSink(), stopping: stopping})
}

type sink struct {
	inner    logr.LogSink
	stopping context.Context
}

// Init does nothing: inner was initialised by base's logger, with the call depth New added.
func (s *sink) Init(logr.RuntimeInfo) {}

func (s *sink) Enabled(level int) bool { return s.inner.Enabled(level) }

func (s *sink) Info(level int, msg string, kv ...any) { s.inner.Info(level, msg, kv...) }

func (s *sink) Error(err error, msg string, kv ...any) {
	if s.stopping.Err() != nil && expected(err, msg) {
		s.inner.Info(0, msg, slices.Concat(kv, []any{"error", err.Error(), "shutdown", true})...)
		return
	}
	s.inner.Error(err, msg, kv...)
}

func (s *sink) WithValues(kv ...any) logr.LogSink {
	return &sink{inner: s.inner.WithValues(kv...), stopping: s.stopping}
}

func (s *sink) WithName(name string) logr.LogSink {
	return &sink{inner: s.inner.WithName(name), stopping: s.stopping}
}

func (s *sink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.inner.(logr.CallDepthLogSink); ok {
		return &sink{inner: cd.WithCallDepth(depth), stopping: s.stopping}
	}
	return s
}

// expected reports whether an error is the shutdown's doing: a cancellation, or the Lease
// controller-runtime releases on a graceful stop, which it reports as lost once the stop
// has begun (kubernetes-sigs/controller-runtime#3535; a lease lost while running still is an error).
func expected(err error, msg string) bool {
	return errors.Is(err, context.Canceled) ||
		(msg == "error received after stop sequence was engaged" && err != nil && err.Error() == "leader election lost")
}
