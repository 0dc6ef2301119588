package decision

import (
	"testing"
	"time"
)

var (
	issued = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	expiry = issued.Add(time.Hour)
)

func fresh(now time.Time) Facts {
	return Facts{Now: now, HaveToken: true, Issued: issued, Expiry: expiry, Seed: "uid"}
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name        string
		facts       Facts
		refresh     bool
		requeueMin  time.Duration
		requeueMax  time.Duration
		noRequeueOK bool
	}{
		{"fresh token: wait until the refresh time (40m minus jitter)", fresh(issued.Add(10 * time.Minute)), false, 28 * time.Minute, 30 * time.Minute, false},
		{"due: refresh", fresh(issued.Add(41 * time.Minute)), true, 0, 0, true},
		{"no token: refresh", Facts{Now: issued}, true, 0, 0, true},
		{"expired token: refresh", fresh(expiry.Add(time.Second)), true, 0, 0, true},
		{"refreshBefore 15m honoured", func() Facts { f := fresh(issued.Add(40 * time.Minute)); f.RefreshWant = 15 * time.Minute; return f }(), false, 3 * time.Minute, 5 * time.Minute, false},
		{"inputs changed with a fresh token: refresh", func() Facts { f := fresh(issued); f.InputsChanged = true; return f }(), true, 0, 0, true},
		{"manual request: refresh", func() Facts { f := fresh(issued); f.ManualRequest = true; return f }(), true, 0, 0, true},
		{"manual request beats a permanent failure", Facts{Now: issued, PermanentFailure: true, ManualRequest: true}, true, 0, 0, true},
		{"permanent failure, no token: wait for a watch event only", Facts{Now: issued, PermanentFailure: true}, false, 0, 0, true},
		{"permanent failure, token valid: look again at expiry only", func() Facts { f := fresh(issued.Add(50 * time.Minute)); f.PermanentFailure = true; return f }(), false, 10 * time.Minute, 10 * time.Minute, false},
		{"permanent failure, inputs changed: try again", Facts{Now: issued, PermanentFailure: true, InputsChanged: true}, true, 0, 0, true},
		{"in backoff with a valid token: wait for the retry", func() Facts {
			f := fresh(issued.Add(45 * time.Minute))
			f.FailedAttempts, f.RetryAt = 2, issued.Add(46*time.Minute)
			return f
		}(), false, time.Minute, time.Minute, false},
		{"in backoff past expiry: look again at expiry", func() Facts {
			f := fresh(expiry.Add(-10 * time.Second))
			f.FailedAttempts, f.RetryAt = 5, expiry.Add(5*time.Minute)
			return f
		}(), false, 10 * time.Second, 10 * time.Second, false},
		{"in backoff without a token: no request before the retry time", Facts{Now: issued, FailedAttempts: 1, RetryAt: issued.Add(8 * time.Second)}, false, 8 * time.Second, 8 * time.Second, false},
		{"backoff over: refresh", func() Facts {
			f := fresh(issued.Add(45 * time.Minute))
			f.FailedAttempts, f.RetryAt = 2, issued.Add(44*time.Minute)
			return f
		}(), true, 0, 0, true},
		{"target conflict: nothing, even without a token", Facts{Now: issued, TargetConflict: true, InputsChanged: true, ManualRequest: true}, false, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.facts)
			if d.Refresh != tc.refresh {
				t.Fatalf("Refresh = %v (%s), want %v", d.Refresh, d.Why, tc.refresh)
			}
			if d.Refresh && d.Why == "" {
				t.Error("a refresh without a reason")
			}
			if d.RequeueAfter == 0 {
				if !tc.noRequeueOK {
					t.Errorf("no requeue, want within [%v, %v]", tc.requeueMin, tc.requeueMax)
				}
				return
			}
			if d.RequeueAfter < time.Second {
				t.Errorf("RequeueAfter = %v: zero or sub-second requeues loop hot", d.RequeueAfter)
			}
			if d.RequeueAfter < tc.requeueMin || d.RequeueAfter > tc.requeueMax {
				t.Errorf("RequeueAfter = %v, want within [%v, %v]", d.RequeueAfter, tc.requeueMin, tc.requeueMax)
			}
		})
	}
}

// TestNoLoopWhenRefreshBeforeExceedsLifetime: a freshly issued token with a refreshBefore
// longer than its lifetime must not be due again at once (cert-manager #4423).
func TestNoLoopWhenRefreshBeforeExceedsLifetime(t *testing.T) {
	f := fresh(issued.Add(time.Second))
	f.RefreshWant = 2 * time.Hour
	if d := Decide(f); d.Refresh || d.RequeueAfter < 30*time.Minute {
		t.Errorf("Decide = %+v: a just-issued token is due again", d)
	}
}
