package controllers

import (
	"sync"
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
// knownPriority (an event's) to knownPriority once it has waited after in the queue.
type escalatingQueue[T comparable] struct {
	priorityqueue.PriorityQueue[T]
	clock clock.WithDelayedExecution
	after time.Duration

	mu     sync.Mutex
	timers map[T]waitTimer
}

// waitTimer is an item's escalation; id tells a timer from its item's later ones.
type waitTimer struct {
	timer clock.Timer
	id    *struct{ _ byte }
}

func newEscalatingQueue[T comparable](q priorityqueue.PriorityQueue[T], c clock.WithDelayedExecution, after time.Duration) *escalatingQueue[T] {
	return &escalatingQueue[T]{PriorityQueue: q, clock: c, after: after, timers: map[T]waitTimer{}}
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
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, item := range items {
		if _, waiting := q.timers[item]; waiting {
			continue // the first add's wait counts
		}
		id := &struct{ _ byte }{}
		q.timers[item] = waitTimer{timer: q.clock.AfterFunc(q.after, func() { q.escalate(item, id) }), id: id}
	}
}

func (q *escalatingQueue[T]) Add(item T) { q.AddWithOpts(priorityqueue.AddOpts{}, item) }

// escalate raises item, still waiting since the timer id was set, to knownPriority.
func (q *escalatingQueue[T]) escalate(item T, id *struct{ _ byte }) {
	q.mu.Lock()
	w, ok := q.timers[item]
	still := ok && w.id == id
	if still {
		delete(q.timers, item)
	}
	q.mu.Unlock()
	if still {
		q.PriorityQueue.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(knownPriority)}, item)
	}
}

// taken ends item's wait: a worker has it.
func (q *escalatingQueue[T]) taken(item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w, ok := q.timers[item]; ok {
		w.timer.Stop()
		delete(q.timers, item)
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
