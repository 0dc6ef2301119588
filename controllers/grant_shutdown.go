package controllers

import (
	"context"
	"errors"
	"time"
)

// ShutdownGrace is how long a reconcile in flight when the manager stops (SIGTERM in a
// rolling update, a leader hand-over) may go on. Cutting a refresh off mid-request wastes the
// token Google has just issued and, with a provider that rotates refresh tokens, could lose
// the new one; a few seconds lets it be published. It stays well within controller-runtime's
// 30-second graceful-shutdown timeout, after which the Lease is released, so two managers
// never refresh at once, and within the pod's termination grace period.
const ShutdownGrace = 10 * time.Second

// errShutdownGraceOver is the cause of a reconcile's context ending after ShutdownGrace.
var errShutdownGraceOver = errors.New("the manager is shutting down and the shutdown grace period is over")

// Every result's work-queue priority is knownPriority (grant_queue.go), retries after errors and
// cache waits included: controller-runtime's priority queue keeps a request's priority on
// requeue unless told otherwise, and a grant listed at start (its low priority) or created
// (the default) must, once looked at, have its refreshes go before new work.

// drain returns a context with ctx's values (logger, reconcile ID) that is not cancelled with
// ctx but grace later, with errShutdownGraceOver as its cause. Call cancel when done.
func drain(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	d, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel(errShutdownGraceOver)
		case <-d.Done():
		}
	})
	return d, func() {
		stop()
		cancel(context.Canceled)
	}
}
