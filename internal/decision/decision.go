// Package decision answers, without I/O, whether a grant needs a token request now, and if
// not, when to look again. The controller gathers the facts; this package only decides.
package decision

import (
	"time"

	"github.com/grantkeeper/grantkeeper/internal/schedule"
)

// Facts is everything the decision depends on.
type Facts struct {
	Now time.Time

	// TargetConflict: the derived Secret's name is taken by a Secret this grant does not own.
	TargetConflict bool

	// HaveToken: the derived Secret is ours, in our exact shape, and its token has these times.
	HaveToken   bool
	Issued      time.Time
	Expiry      time.Time
	RefreshWant time.Duration // spec.refreshBefore, 0 for the default
	Seed        string        // the grant's UID: stable jitter

	// InputsChanged: the spec or a referenced Secret differs from the last token request's.
	InputsChanged bool
	// ManualRequest: an unhandled refresh-requested-at annotation newer than the last refresh.
	ManualRequest bool

	// PermanentFailure: the last request failed in a way retrying cannot fix (invalid_grant,
	// invalid_client, a bad Secret...).
	PermanentFailure bool
	// FailedAttempts and RetryAt: transient failures so far, and when the backoff ends.
	FailedAttempts int32
	RetryAt        time.Time
}

// Decision says whether to request a token now, why, and when to look again otherwise.
type Decision struct {
	Refresh bool
	Why     string
	// RequeueAfter is when to reconcile again; 0 means only on a watch event.
	RequeueAfter time.Duration
	// RefreshAt is when the current token is due for refresh (zero without a token).
	RefreshAt time.Time
}

// Decide applies the rules in order of precedence.
func Decide(f Facts) Decision {
	var refreshAt time.Time
	if f.HaveToken {
		refreshAt = schedule.RefreshTime(f.Issued, f.Expiry, f.RefreshWant, f.Seed)
	}
	tokenValid := f.HaveToken && f.Now.Before(f.Expiry)
	wait := func(at time.Time) Decision {
		// Look again at the earlier of `at` and expiry, so Ready turns False on time.
		if tokenValid && f.Expiry.Before(at) {
			at = f.Expiry
		}
		return Decision{RequeueAfter: schedule.Delay(f.Now, at), RefreshAt: refreshAt}
	}
	switch {
	case f.TargetConflict:
		// Never write into someone else's Secret; a watch on it wakes us when it goes away.
		return Decision{RefreshAt: refreshAt}
	case f.ManualRequest:
		return Decision{Refresh: true, Why: "manual refresh requested", RefreshAt: refreshAt}
	case f.InputsChanged:
		return Decision{Refresh: true, Why: "spec or referenced Secret changed", RefreshAt: refreshAt}
	case f.PermanentFailure:
		// No token requests until an input changes or a manual refresh is requested
		// (hot loops on permanent errors are what users of other operators hated most).
		if tokenValid {
			return Decision{RequeueAfter: schedule.Delay(f.Now, f.Expiry), RefreshAt: refreshAt}
		}
		return Decision{RefreshAt: refreshAt}
	case f.FailedAttempts > 0 && f.Now.Before(f.RetryAt):
		return wait(f.RetryAt)
	case !tokenValid:
		return Decision{Refresh: true, Why: "no valid access token", RefreshAt: refreshAt}
	case !f.Now.Before(refreshAt):
		return Decision{Refresh: true, Why: "access token due for refresh", RefreshAt: refreshAt}
	default:
		return wait(refreshAt)
	}
}
