// Package schedule holds the pure timing decisions of a grant: when to refresh a token and
// how long to back off after a failure. No I/O and no clock: callers pass the times in.
package schedule

import (
	"hash/fnv"
	"time"
)

// MinDelay is the shortest requeue ever scheduled: a zero or negative delay would loop hot.
const MinDelay = time.Second

// RefreshBefore is how long before expiry a token obtained at issued and expiring at expiry
// is refreshed. It is the requested duration when that is positive and shorter than the
// token's actual lifetime, else a third of the lifetime. Clamping matters: a requested value
// not shorter than the lifetime would make every refresh immediately due again
// (cert-manager #4423).
func RefreshBefore(issued, expiry time.Time, requested time.Duration) time.Duration {
	lifetime := expiry.Sub(issued)
	if requested > 0 && requested < lifetime {
		return requested
	}
	return lifetime / 3
}

// RefreshTime is when to refresh a token obtained at issued that expires at expiry.
//
// A jitter of up to a tenth of the refresh window, derived from seed (the grant's UID), only
// moves the time earlier, so grants created together drift apart instead of refreshing in
// lockstep forever, and the same inputs always give the same answer (restarts reschedule to
// the same time). The result is never earlier than a tenth of the lifetime after issue, which
// bounds how often a grant with a refreshBefore just under the lifetime can refresh, and it
// is truncated to whole seconds: earlier, never later.
func RefreshTime(issued, expiry time.Time, requested time.Duration, seed string) time.Time {
	lifetime := expiry.Sub(issued)
	if lifetime <= 0 {
		return issued.Truncate(time.Second)
	}
	before := RefreshBefore(issued, expiry, requested)
	jitter := time.Duration(fraction(seed, expiry.Unix()) * float64(before) / 10)
	at := expiry.Add(-before - jitter)
	if floor := issued.Add(lifetime / 10); at.Before(floor) {
		at = floor
	}
	return at.Truncate(time.Second)
}

// Backoff is an exponential backoff with jitter.
//
// It is computed from the persisted attempt count rather than kept in a workqueue rate
// limiter: those keep per-item state in memory (lost on restart or leader change) and cannot
// honour a server's Retry-After.
type Backoff struct {
	Base time.Duration // delay after the first failure
	Max  time.Duration // cap
}

// DefaultBackoff: a few seconds up to a few minutes.
var DefaultBackoff = Backoff{Base: 5 * time.Second, Max: 5 * time.Minute}

// Delay is the wait after the attempt-th consecutive failure (attempt >= 1), at least
// retryAfter (what the server asked for, capped at an hour). Jitter, derived from seed and
// attempt, puts the delay between half and all of the exponential value.
func (b Backoff) Delay(attempt int32, retryAfter time.Duration, seed string) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := b.Base
	for i := int32(1); i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	d = d/2 + time.Duration(fraction(seed, int64(attempt))*float64(d/2))
	retryAfter = min(retryAfter, time.Hour)
	return max(d, retryAfter, MinDelay)
}

// Delay is how long to wait from now until at, never less than MinDelay.
func Delay(now, at time.Time) time.Duration {
	return max(at.Sub(now), MinDelay)
}

// fraction maps (seed, n) to a stable number in [0, 1).
func fraction(seed string, n int64) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(seed))
	var b [8]byte
	for i := range b {
		b[i] = byte(n >> (8 * i))
	}
	_, _ = h.Write(b[:])
	return float64(h.Sum64()%10000) / 10000
}
