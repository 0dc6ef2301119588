package schedule

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func TestRefreshBefore(t *testing.T) {
	hour := t0.Add(time.Hour)
	for _, tc := range []struct {
		name      string
		expiry    time.Time
		requested time.Duration
		want      time.Duration
	}{
		{"default is a third of the lifetime", hour, 0, 20 * time.Minute},
		{"requested shorter than lifetime is used", hour, 15 * time.Minute, 15 * time.Minute},
		{"requested equal to lifetime falls back to a third", hour, time.Hour, 20 * time.Minute},
		{"requested longer than lifetime falls back to a third", hour, 2 * time.Hour, 20 * time.Minute},
		{"negative requested is ignored", hour, -time.Minute, 20 * time.Minute},
		{"short-lived tokens (Google sometimes sends 3599s)", t0.Add(3599 * time.Second), 0, 3599 * time.Second / 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RefreshBefore(t0, tc.expiry, tc.requested); got != tc.want {
				t.Errorf("RefreshBefore = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRefreshTime(t *testing.T) {
	hour := t0.Add(time.Hour)
	for _, tc := range []struct {
		name             string
		issued, expiry   time.Time
		requested        time.Duration
		earliest, latest time.Time
	}{
		{"default: 40 minutes in, jitter at most 2 minutes earlier", t0, hour, 0, t0.Add(38 * time.Minute), t0.Add(40 * time.Minute)},
		{"refreshBefore 15m", t0, hour, 15 * time.Minute, t0.Add(43*time.Minute + 30*time.Second), t0.Add(45 * time.Minute)},
		{"refreshBefore longer than lifetime: no loop, a third", t0, hour, 3 * time.Hour, t0.Add(38 * time.Minute), t0.Add(40 * time.Minute)},
		{"refreshBefore just under lifetime: not before a tenth of the lifetime", t0, hour, 59 * time.Minute, t0.Add(6 * time.Minute), t0.Add(6 * time.Minute)},
		{"expired on issue: now", t0, t0, 0, t0, t0},
		{"sub-second issue time is truncated, never later", t0.Add(500 * time.Millisecond), hour.Add(500 * time.Millisecond), 0, t0.Add(38 * time.Minute), t0.Add(40 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, seed := range []string{"a", "b", "c", "uid-1", "uid-2"} {
				got := RefreshTime(tc.issued, tc.expiry, tc.requested, seed)
				if got.Before(tc.earliest) || got.After(tc.latest) {
					t.Errorf("seed %q: RefreshTime = %v, want within [%v, %v]", seed, got, tc.earliest, tc.latest)
				}
				if got.Nanosecond() != 0 {
					t.Errorf("seed %q: RefreshTime %v is not whole seconds", seed, got)
				}
				if !got.Before(tc.expiry) && tc.expiry.After(tc.issued) {
					t.Errorf("seed %q: RefreshTime %v not before expiry %v", seed, got, tc.expiry)
				}
				if again := RefreshTime(tc.issued, tc.expiry, tc.requested, seed); !again.Equal(got) {
					t.Errorf("seed %q: not deterministic: %v then %v", seed, got, again)
				}
			}
		})
	}
}

func TestRefreshTimeSpreadsGrants(t *testing.T) {
	seen := map[time.Time]bool{}
	for i := range 100 {
		seen[RefreshTime(t0, t0.Add(time.Hour), 0, string(rune('a'+i%26))+string(rune('a'+i/26)))] = true
	}
	if len(seen) < 50 {
		t.Errorf("100 grants issued together got only %d distinct refresh times; jitter does not spread them", len(seen))
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 4 * time.Second, Max: 5 * time.Minute}
	for _, tc := range []struct {
		name       string
		attempt    int32
		retryAfter time.Duration
		min, max   time.Duration
	}{
		{"first failure: between half and all of base", 1, 0, 2 * time.Second, 4 * time.Second},
		{"attempt 0 treated as first", 0, 0, 2 * time.Second, 4 * time.Second},
		{"doubles", 3, 0, 8 * time.Second, 16 * time.Second},
		{"capped at max", 30, 0, 150 * time.Second, 5 * time.Minute},
		{"huge attempt count does not overflow", 1 << 30, 0, 150 * time.Second, 5 * time.Minute},
		{"Retry-After longer than backoff wins", 1, 90 * time.Second, 90 * time.Second, 90 * time.Second},
		{"Retry-After shorter than backoff is not a shortcut", 3, time.Second, 8 * time.Second, 16 * time.Second},
		{"absurd Retry-After capped at an hour", 1, 48 * time.Hour, time.Hour, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := b.Delay(tc.attempt, tc.retryAfter, "seed")
			if got < tc.min || got > tc.max {
				t.Errorf("Delay = %v, want within [%v, %v]", got, tc.min, tc.max)
			}
		})
	}
	if d := (Backoff{}).Delay(1, 0, "x"); d < MinDelay {
		t.Errorf("zero backoff gave %v, want at least %v", d, MinDelay)
	}
}

func TestDelayNeverZero(t *testing.T) {
	for _, at := range []time.Time{t0.Add(-time.Hour), t0, t0.Add(time.Millisecond)} {
		if d := Delay(t0, at); d < MinDelay {
			t.Errorf("Delay(now, %v) = %v, want >= %v", at, d, MinDelay)
		}
	}
	if d := Delay(t0, t0.Add(time.Minute)); d != time.Minute {
		t.Errorf("Delay = %v, want 1m", d)
	}
}
