package main

import (
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

// documentedRefresh is when a token the fake issued falls due by the documented schedule
// (docs/grants.md; the bench's grants set no refreshBefore): a third of its lifetime before
// its expiry (latest), and at most a tenth of that third earlier (the per-grant jitter),
// never before a tenth of the lifetime after issue, less 2 s for the operator's whole-second
// view of issue and expiry and its truncated schedule (earliest). It is computed here from
// the fake's record alone, not by internal/schedule: a schedule that went wrong there would
// agree with itself. A zero token (none issued) is due at once.
func documentedRefresh(t fakegoogle.IssuedToken) (earliest, latest time.Time) {
	if t.Expiry.IsZero() {
		return time.Time{}, time.Time{}
	}
	lifetime := t.Expiry.Sub(t.Issued)
	before := lifetime / 3
	latest = t.Expiry.Add(-before)
	earliest = latest.Add(-before / 10)
	if floor := t.Issued.Add(lifetime / 10); earliest.Before(floor) {
		earliest = floor
	}
	return earliest.Add(-2 * time.Second), latest
}

// cycleFigures are the refresh-cycle figures of the measured window, from the fake's record
// of the tokens it issued and the requests it answered, never from the operator's status.
type cycleFigures struct {
	requests int // token requests in the window
	// due counts refreshes that fell due in the window: each access token the fake issued,
	// still the grant's newest when its documented refresh time (documentedRefresh, from its
	// issue and expiry) came. missed counts those with no request before the token expired.
	due, missed int
	// grantsMissing have a missed refresh; grantsSilent made no request for a whole token
	// lifetime somewhere in the window (a grant skipped altogether shows here even when it
	// has no due refresh left to miss).
	grantsMissing, grantsSilent int
}

func (c *cycleFigures) add(g cycleFigures) {
	c.requests += g.requests
	c.due += g.due
	c.missed += g.missed
	c.grantsMissing += g.grantsMissing
	c.grantsSilent += g.grantsSilent
}

// grantCycles computes one grant's figures for the window [start, end): tokens are the
// access tokens issued for its refresh token in issue order, requests the arrival times of
// its token requests (all of them, to when the figures are read).
//
// A request is charged to the token that was the grant's newest when it came: it answers
// that token's refresh, duplicates an answer, or replaces the token before it was due. It
// counts when the refresh it belongs to does: the token's due time is in the window, or for
// an early replacement the request itself is. Counting the requests that arrive in the
// window instead would charge it with a backlog draining as it opens (answers to refreshes
// due before it) and not with one building as it closes, reading above 1 when the operator
// catches up and below when it falls behind.
func grantCycles(tokens []fakegoogle.IssuedToken, requests []time.Time, lifetime time.Duration, start, end time.Time) cycleFigures {
	var f cycleFigures
	in := func(t time.Time) bool { return !t.Before(start) && t.Before(end) }
	prev := start
	for _, r := range requests {
		if !in(r) {
			continue
		}
		if r.Sub(prev) > lifetime {
			f.grantsSilent = 1
		}
		prev = r
	}
	if end.Sub(prev) > lifetime {
		f.grantsSilent = 1
	}
	// dueOf is token k's documented refresh time (the latest, without jitter) and the
	// earliest a request may replace it (documentedRefresh).
	dueOf := func(k int) (due, earliest time.Time) {
		earliest, due = documentedRefresh(tokens[k])
		if k == len(tokens)-1 && due.Before(start) {
			due = start // never replaced: overdue when the window opens
		}
		return due, earliest
	}
	charged := make([]int, len(tokens)) // requests charged to each token's due refresh
	k := -1
	for _, r := range requests {
		for k+1 < len(tokens) && tokens[k+1].Issued.Before(r) {
			k++
		}
		if k < 0 {
			continue // the first token's request: the grant's creation
		}
		_, earliest := dueOf(k)
		if r.Before(earliest) {
			if in(r) {
				f.requests++ // early: nothing was due
			}
			continue
		}
		charged[k]++
	}
	for k, tok := range tokens {
		due, earliest := dueOf(k)
		if !in(due) || (k+1 < len(tokens) && tokens[k+1].Issued.Before(earliest)) {
			continue // not due in the window, or replaced early (counted above)
		}
		f.requests += charged[k]
		if tok.Expiry.After(end) {
			if charged[k] > 0 {
				f.due++
			}
			continue // unanswered yet: its refresh may still come after the window
		}
		f.due++
		if tok.Expiry.Before(due) {
			f.missed++ // overdue and already expired
			f.grantsMissing = 1
			continue
		}
		answered := false
		for _, r := range requests {
			if !r.Before(earliest) && r.Before(tok.Expiry) {
				answered = true
				break
			}
		}
		if !answered {
			f.missed++
			f.grantsMissing = 1
		}
	}
	return f
}

// lateReplacement is a token replaced only after it expired: when its refresh was due, when
// the request answering it came, and when the new token was issued.
type lateReplacement struct {
	grant                          string
	due, request, expiry, replaced time.Time
}

// lateReplacements lists one grant's tokens replaced after they expired, the replacement
// issued in [from, to). They show where expired-token-seconds came from: a request that came
// late (the work queue) or one in time answered late (the API server, Google).
func lateReplacements(grant string, tokens []fakegoogle.IssuedToken, requests []time.Time, from, to time.Time) []lateReplacement {
	var out []lateReplacement
	for k := 0; k+1 < len(tokens); k++ {
		tok, next := tokens[k], tokens[k+1]
		if !next.Issued.After(tok.Expiry) || next.Issued.Before(from) || !next.Issued.Before(to) {
			continue
		}
		_, due := documentedRefresh(tok)
		l := lateReplacement{grant: grant, due: due, expiry: tok.Expiry, replaced: next.Issued}
		for _, r := range requests {
			if r.After(tok.Issued) && r.Before(next.Issued) {
				l.request = r
				break
			}
		}
		out = append(out, l)
	}
	return out
}
