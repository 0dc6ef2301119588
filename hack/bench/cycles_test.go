package main

import (
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

// simulate issues tokens for one grant the way a correct operator does (a request at each
// token's refresh time), except that skipAfter stops it and dup sends two requests each time.
func simulate(uid string, lifetime time.Duration, from, until time.Time, skipAfter time.Time, dup bool) ([]fakegoogle.IssuedToken, []time.Time) {
	var toks []fakegoogle.IssuedToken
	var reqs []time.Time
	at := from
	for at.Before(until) && (skipAfter.IsZero() || at.Before(skipAfter)) {
		reqs = append(reqs, at)
		tok := fakegoogle.IssuedToken{Issued: at.Add(20 * time.Millisecond), Expiry: at.Add(20*time.Millisecond + lifetime)}
		if dup {
			reqs = append(reqs, at.Add(50*time.Millisecond))
			toks = append(toks, tok)
			tok = fakegoogle.IssuedToken{Issued: at.Add(70 * time.Millisecond), Expiry: at.Add(70*time.Millisecond + lifetime)}
		}
		toks = append(toks, tok)
		at = schedule.RefreshTime(tok.Issued, tok.Expiry, 0, uid).Add(5 * time.Millisecond)
	}
	return toks, reqs
}

func TestGrantCycles(t *testing.T) {
	const L = time.Minute
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	start, end := t0.Add(L), t0.Add(4*L)
	for _, tc := range []struct {
		name                  string
		skipAfter             time.Time
		dup                   bool
		perDue                float64 // requests per due refresh, about
		missing, silent, miss bool
	}{
		{name: "healthy", perDue: 1},
		{name: "duplicates", dup: true, perDue: 2},
		{name: "skipped in the window", skipAfter: t0.Add(2 * L), perDue: 0.67, missing: true, silent: true},     // 2 of 3 due refreshes made
		{name: "skipped before the window", skipAfter: t0.Add(L / 2), perDue: 0.01, missing: true, silent: true}, // 0 requests, 1 overdue refresh each
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sum cycleFigures
			for _, uid := range []string{"a", "b", "c", "d"} {
				toks, reqs := simulate(uid, L, t0, end.Add(L), tc.skipAfter, tc.dup)
				sum.add(grantCycles(toks, reqs, uid, L, start, end))
			}
			if tc.perDue > 0 {
				if got := float64(sum.requests) / float64(sum.due); got < tc.perDue*0.9-0.01 || got > tc.perDue*1.1 {
					t.Errorf("requests per due refresh = %.3f (%d/%d), want about %.1f", got, sum.requests, sum.due, tc.perDue)
				}
			}
			if (sum.grantsMissing == 4) != tc.missing || (sum.grantsMissing != 0 && sum.grantsMissing != 4) {
				t.Errorf("grants with a missed refresh = %d, want all 4: %v", sum.grantsMissing, tc.missing)
			}
			if (sum.grantsSilent == 4) != tc.silent || (sum.grantsSilent != 0 && sum.grantsSilent != 4) {
				t.Errorf("grants silent for a lifetime = %d, want all 4: %v", sum.grantsSilent, tc.silent)
			}
			t.Logf("%+v", sum)
		})
	}
}
