package controllers

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
)

// recordingQueue forwards to a real priority queue and records what was added with which
// priority.
type recordingQueue struct {
	priorityqueue.PriorityQueue[string]
	mu   sync.Mutex
	adds []string
}

func (r *recordingQueue) AddWithOpts(o priorityqueue.AddOpts, items ...string) {
	r.mu.Lock()
	for _, it := range items {
		r.adds = append(r.adds, it+"@"+priorityName(o))
	}
	r.mu.Unlock()
	r.PriorityQueue.AddWithOpts(o, items...)
}

func (r *recordingQueue) escalations() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.adds {
		// Items the tests add at knownPriority themselves are named refresh-*.
		if strings.HasSuffix(a, "@known") && !strings.HasPrefix(a, "refresh") {
			n++
		}
	}
	return n
}

func priorityName(o priorityqueue.AddOpts) string {
	if ptr.Deref(o.Priority, 0) == knownPriority {
		return "known"
	}
	return "new"
}

func newTestQueue(t *testing.T) (*escalatingQueue[string], *recordingQueue, *clocktesting.FakeClock) {
	t.Helper()
	inner := &recordingQueue{PriorityQueue: priorityqueue.New[string]("test")}
	c := clocktesting.NewFakeClock(time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC))
	q := newEscalatingQueue[string](inner, c, newWorkWait)
	t.Cleanup(q.ShutDown)
	return q, inner, c
}

// get takes the next item, failing the test if none comes within a second.
func get(t *testing.T, q *escalatingQueue[string]) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		it, _, _ := q.GetWithPriority()
		got <- it
	}()
	select {
	case it := <-got:
		q.Done(it)
		return it
	case <-time.After(5 * time.Second):
		t.Fatal("no item handed out")
		return ""
	}
}

// waitTicker waits until the escalation loop has its ticker (steps before it are lost).
func waitTicker(t *testing.T, c *clocktesting.FakeClock) {
	t.Helper()
	if !pollFor(func() bool { return c.HasWaiters() }) {
		t.Fatal("the escalation loop has no ticker")
	}
}

// pollFor polls cond every millisecond for up to 5 s; false when it never held.
func pollFor(cond func() bool) bool {
	return wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 5*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }) == nil
}

// step advances the fake clock by d and waits until the escalation loop has handled the tick
// (the fake ticker's channel holds one tick: a second step before the loop read the first
// would be lost).
func step[T comparable](t *testing.T, q *escalatingQueue[T], c *clocktesting.FakeClock, d time.Duration) {
	t.Helper()
	before := q.ticks.Load()
	c.Step(d)
	if !pollFor(func() bool { return q.ticks.Load() > before }) {
		t.Fatalf("the escalation loop did not handle the tick at %s", c.Now())
	}
}

// waitEscalations waits until n escalations reached the inner queue (the fake clock runs
// timers in goroutines of their own).
func waitEscalations(t *testing.T, inner *recordingQueue, n int) {
	t.Helper()
	if !pollFor(func() bool { return inner.escalations() >= n }) {
		t.Fatalf("escalations: %d, want %d", inner.escalations(), n)
	}
}

// TestRefreshesGoBeforeNewWork (issue 33 item 6): a requeued refresh goes before new work
// queued earlier; new work waiting newWorkWait takes its turn with the refreshes, behind those
// already waiting and ahead of later ones.
func TestRefreshesGoBeforeNewWork(t *testing.T) {
	q, inner, c := newTestQueue(t)
	q.Add("new-1")                                                                     // an event
	q.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(knownPriority)}, "refresh-1") // a requeue
	if got := get(t, q); got != "refresh-1" {
		t.Fatalf("first out: %s, want refresh-1 (a refresh before new work queued earlier)", got)
	}
	q.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(knownPriority)}, "refresh-2")
	waitTicker(t, c)
	for range 4 { // the ticks before newWorkWait, each handled
		step(t, q, c, newWorkWait/5)
	}
	if n := inner.escalations(); n != 0 {
		t.Fatalf("escalated before newWorkWait: %d", n)
	}
	c.Step(newWorkWait / 5)
	waitEscalations(t, inner, 1)
	q.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(knownPriority)}, "refresh-3")
	for _, want := range []string{"refresh-2", "new-1", "refresh-3"} {
		if got := get(t, q); got != want {
			t.Fatalf("got %s, want %s (escalated new work goes behind refreshes already waiting, ahead of later ones)", got, want)
		}
	}
}

// TestEscalationOnlyForWaitingNewWork: only new work still waiting is escalated, once.
func TestEscalationOnlyForWaitingNewWork(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(q *escalatingQueue[string])
		take bool // a worker takes the item before newWorkWait
		want int
	}{
		{"event", func(q *escalatingQueue[string]) { q.Add("g") }, false, 1},
		{"event listed at start", func(q *escalatingQueue[string]) {
			q.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(-100)}, "g")
		}, false, 1},
		{"two events, one escalation", func(q *escalatingQueue[string]) { q.Add("g"); q.Add("g") }, false, 1},
		{"taken in time", func(q *escalatingQueue[string]) { q.Add("g") }, true, 0},
		{"requeue at known priority", func(q *escalatingQueue[string]) {
			q.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(knownPriority)}, "refresh-g")
		}, false, 0},
		{"delayed requeue", func(q *escalatingQueue[string]) {
			q.AddWithOpts(priorityqueue.AddOpts{After: time.Hour}, "g")
		}, false, 0},
		{"rate-limited retry", func(q *escalatingQueue[string]) {
			q.AddWithOpts(priorityqueue.AddOpts{RateLimited: true, Priority: ptr.To(0)}, "g")
		}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, inner, c := newTestQueue(t)
			tc.add(q)
			if tc.want > 0 || tc.take && tc.name == "taken in time" {
				waitTicker(t, c) // new work started the loop
			}
			if tc.take {
				get(t, q)
			}
			for range 10 {
				if c.HasWaiters() { // the loop runs (new work started it): wait for each tick
					step(t, q, c, newWorkWait/5)
				} else {
					c.Step(newWorkWait / 5)
				}
			}
			if tc.want > 0 {
				waitEscalations(t, inner, tc.want)
			}
			if n := inner.escalations(); n != tc.want {
				t.Errorf("escalations: %d, want %d", n, tc.want)
			}
			q.mu.Lock()
			left := len(q.since)
			q.mu.Unlock()
			if left != 0 {
				t.Errorf("%d items still waiting", left)
			}
		})
	}
}

var _ clock.WithTicker = clocktesting.NewFakeClock(time.Time{})
