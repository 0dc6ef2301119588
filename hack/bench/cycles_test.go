package main

import (
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

// behaviour is how a simulated operator departs from a correct one (a request at each
// token's refresh time): skipAfter stops it, dup sends two requests each time, early
// refreshes at a quarter of the lifetime, lag delays the request for a refresh due then.
type behaviour struct {
	skipAfter time.Time
	dup       bool
	early     bool
	lag       func(due time.Time) time.Duration
}

// simulate issues tokens for one grant as b says.
func simulate(uid string, lifetime time.Duration, from, until time.Time, b behaviour) ([]fakegoogle.IssuedToken, []time.Time) {
	skipAfter, dup := b.skipAfter, b.dup
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
		due := schedule.RefreshTime(tok.Issued, tok.Expiry, 0, uid)
		switch {
		case b.early:
			at = tok.Issued.Add(lifetime / 4)
		case b.lag != nil:
			at = due.Add(b.lag(due))
		default:
			at = due.Add(5 * time.Millisecond)
		}
	}
	return toks, reqs
}

func TestGrantCycles(t *testing.T) {
	const L = time.Minute
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	start, end := t0.Add(L), t0.Add(4*L)
	// A backlog: refreshes due in a span are answered 15 seconds late (within the 20-second
	// window before expiry), the others at once.
	lateIn := func(from, until time.Time) func(time.Time) time.Duration {
		return func(due time.Time) time.Duration {
			if !due.Before(from) && due.Before(until) {
				return 15 * time.Second
			}
			return 5 * time.Millisecond
		}
	}
	for _, tc := range []struct {
		name                  string
		b                     behaviour
		perDue                float64 // requests per due refresh, about
		moreThan              float64 // or at least this many (no refresh ever due)
		missing, silent, miss bool
	}{
		{name: "healthy", perDue: 1},
		{name: "duplicates", b: behaviour{dup: true}, perDue: 2},
		{name: "early", b: behaviour{early: true}, moreThan: 1.5}, // every quarter lifetime: never due
		{name: "catching up as the window opens", b: behaviour{lag: lateIn(start.Add(-L/2), start.Add(L/2))}, perDue: 1},
		{name: "falling behind as the window closes", b: behaviour{lag: lateIn(end.Add(-L/2), end.Add(L))}, perDue: 1},
		{name: "skipped in the window", b: behaviour{skipAfter: t0.Add(2 * L)}, perDue: 0.67, missing: true, silent: true},         // 2 of 3 due refreshes made
		{name: "skipped before the window", b: behaviour{skipAfter: t0.Add(3 * L / 4)}, perDue: 0.01, missing: true, silent: true}, // 0 requests, 1 overdue refresh each
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sum cycleFigures
			for i, uid := range []string{"a", "b", "c", "d"} {
				// Created 10 seconds apart, so that refreshes fall due all through the window.
				toks, reqs := simulate(uid, L, t0.Add(time.Duration(i)*10*time.Second), end.Add(L), tc.b)
				sum.add(grantCycles(toks, reqs, L, start, end))
			}
			if got := float64(sum.requests) / float64(sum.due); tc.moreThan > 0 && !(got > tc.moreThan) {
				t.Errorf("requests per due refresh = %.3f (%d/%d), want more than %.1f", got, sum.requests, sum.due, tc.moreThan)
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

func TestLateReplacements(t *testing.T) {
	const L = time.Minute
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	toks := []fakegoogle.IssuedToken{
		{Issued: t0, Expiry: t0.Add(L)},
		{Issued: t0.Add(40 * time.Second), Expiry: t0.Add(40*time.Second + L)},   // in time
		{Issued: t0.Add(105 * time.Second), Expiry: t0.Add(105*time.Second + L)}, // 5 s after the second expired
	}
	reqs := []time.Time{t0.Add(-time.Second), t0.Add(40*time.Second - 20*time.Millisecond), t0.Add(105*time.Second - 20*time.Millisecond)}
	late := lateReplacements("g", toks, reqs, t0, t0.Add(3*L))
	if len(late) != 1 || !late[0].expiry.Equal(toks[1].Expiry) || !late[0].replaced.Equal(toks[2].Issued) || !late[0].request.Equal(reqs[2]) {
		t.Fatalf("late replacements = %+v, want the third token's, answering the request at +104.98s", late)
	}
	if got := lateReplacements("g", toks, reqs, t0.Add(2*L), t0.Add(3*L)); len(got) != 0 {
		t.Errorf("a replacement before the window was listed: %+v", got)
	}
}

// earliestDue reads only the token the fake issued: 30 s tokens (window 10 s, jitter up to
// 1 s) may be replaced from 19 s after issue, less 2 s for the operator's whole seconds.
func TestEarliestDue(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got := earliestDue(fakegoogle.IssuedToken{Issued: issued, Expiry: issued.Add(30 * time.Second)})
	if want := issued.Add(17 * time.Second); !got.Equal(want) {
		t.Errorf("earliestDue = %s, want %s", got, want)
	}
	if got := earliestDue(fakegoogle.IssuedToken{}); !got.IsZero() {
		t.Errorf("no token issued: earliestDue = %s, want zero (due at once)", got)
	}
}
