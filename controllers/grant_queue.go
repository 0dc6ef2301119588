package controllers

import (
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Work-queue priorities of the grant controller (controller-runtime's priority queue hands
// out higher priorities first, in order of readiness within one priority).
//
// Grants the controller already looks after (every requeue it asks for: the next refresh,
// a retry) come before new work (a created or edited grant, an input Secret's change, every
// grant listed when the manager starts): a refresh falling due while thousands of grants are
// being created must not wait behind all of them and let its token expire (issue 33 item 6).
// New work is not starved for good when refreshes alone keep the workers busy: after
// newWorkWait in the queue it is raised to the refreshes' priority and served in turn with
// them (escalatingQueue).
const (
	knownPriority = 1
	// newWorkWait bounds how long new work waits behind refreshes before taking its turn
	// with them.
	newWorkWait = 5 * time.Second
)

// escalatingQueue is controller-runtime's priority queue, raising an item added below
// knownPriority (an event's) to knownPriority once it has waited after in the queue. One
// ticker scans the waiting items: a timer each would, when thousands are listed at start,
// fire thousands of goroutines at once, whose descriptors the Go runtime keeps for good.
type escalatingQueue[T comparable] struct {
	priorityqueue.PriorityQueue[T]
	clock clock.WithTicker
	after time.Duration

	mu    sync.Mutex
	since map[T]time.Time // new work waiting, since when
	start sync.Once
	done  chan struct{}
	// ticks counts the ticks the loop has handled, so a test on a fake clock can wait for
	// one instead of sleeping.
	ticks atomic.Int64
}

func newEscalatingQueue[T comparable](q priorityqueue.PriorityQueue[T], c clock.WithTicker, after time.Duration) *escalatingQueue[T] {
	return &escalatingQueue[T]{PriorityQueue: q, clock: c, after: after, since: map[T]time.Time{}, done: make(chan struct{})}
}

// newGrantQueue is the grant controller's work queue (controller.Options.NewQueue).
func newGrantQueue(name string, rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	q := priorityqueue.New(name, func(o *priorityqueue.Opts[reconcile.Request]) { o.RateLimiter = rl })
	return newEscalatingQueue(q, clock.RealClock{}, newWorkWait)
}

func (q *escalatingQueue[T]) AddWithOpts(o priorityqueue.AddOpts, items ...T) {
	q.PriorityQueue.AddWithOpts(o, items...)
	if ptr.Deref(o.Priority, 0) >= knownPriority || o.After > 0 || o.RateLimited {
		return
	}
	q.start.Do(func() { go q.escalateLoop() })
	now := q.clock.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, item := range items {
		if _, waiting := q.since[item]; !waiting {
			q.since[item] = now // the first add's wait counts
		}
	}
}

func (q *escalatingQueue[T]) Add(item T) { q.AddWithOpts(priorityqueue.AddOpts{}, item) }

// escalateLoop raises, a few times per after, the new work that has waited after.
func (q *escalatingQueue[T]) escalateLoop() {
	t := q.clock.NewTicker(q.after / 5)
	defer t.Stop()
	for {
		select {
		case <-q.done:
			return
		case <-t.C():
			if due := q.due(q.clock.Now()); len(due) > 0 {
				q.PriorityQueue.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(knownPriority)}, due...)
			}
			q.ticks.Add(1)
		}
	}
}

// due takes out the items that have waited after at now.
func (q *escalatingQueue[T]) due(now time.Time) []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	var due []T
	for item, since := range q.since {
		if now.Sub(since) >= q.after {
			due = append(due, item)
			delete(q.since, item)
		}
	}
	q.shrinkLocked()
	return due
}

// shrinkLocked replaces an emptied map: a Go map keeps the size of its largest burst (every
// grant, listed at start).
func (q *escalatingQueue[T]) shrinkLocked() {
	if len(q.since) == 0 {
		q.since = map[T]time.Time{}
	}
}

// taken ends item's wait: a worker has it.
func (q *escalatingQueue[T]) taken(item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.since[item]; ok {
		delete(q.since, item)
		q.shrinkLocked()
	}
}

func (q *escalatingQueue[T]) GetWithPriority() (T, int, bool) {
	item, p, shutdown := q.PriorityQueue.GetWithPriority()
	if !shutdown {
		q.taken(item)
	}
	return item, p, shutdown
}

func (q *escalatingQueue[T]) Get() (T, bool) {
	item, shutdown := q.PriorityQueue.Get()
	if !shutdown {
		q.taken(item)
	}
	return item, shutdown
}

func (q *escalatingQueue[T]) ShutDown() {
	q.stop()
	q.PriorityQueue.ShutDown()
}

func (q *escalatingQueue[T]) ShutDownWithDrain() {
	q.stop()
	q.PriorityQueue.ShutDownWithDrain()
}

func (q *escalatingQueue[T]) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-q.done:
	default:
		close(q.done)
	}
}
