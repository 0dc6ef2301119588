// Package eventsink writes the Events of a client-go events.EventBroadcaster (events.k8s.io/v1)
// to the API server as the broadcaster's own StartRecordingToSink does: a new Event for each
// first occurrence, a repeat (same type, action, reason, reporter and objects) within six
// minutes turning the first Event into a series with a count. It differs in what it keeps: of
// each Event sent, its name and series only, where the library keeps a full copy for six to
// twelve minutes; after 10,000 grants got their first tokens those copies were 6.5 MB, an
// eighth of the manager's live heap (docs/benchmarks.md).
package eventsink

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"hash"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// The library's timings (k8s.io/client-go/tools/events), kept so that series look the same.
const (
	// finishAfter: an occurrence this long after the last is a new Event, and a series this
	// long quiet gets its final count written.
	finishAfter = 6 * time.Minute
	// refreshEvery: open series have their count written this often.
	refreshEvery = 30 * time.Minute
	// maxTries and retryAfter: writes that fail for a transient reason are tried again.
	maxTries   = 12
	retryAfter = 10 * time.Second
)

// Sink remembers the Events it sent until their series can no longer grow.
type Sink struct {
	sink       events.EventSink
	clock      clock.Clock
	retryAfter time.Duration

	mu     sync.Mutex
	recent map[key]*sent
}

// key identifies the occurrences of one Event: a digest of the fields the library compares.
type key [sha256.Size]byte

type sent struct {
	namespace, name string
	at              time.Time             // when the Event was first emitted
	series          *eventsv1.EventSeries // nil while it occurred once
}

// New returns a Sink writing to sink.
func New(sink events.EventSink, clk clock.Clock) *Sink {
	return &Sink{sink: sink, clock: clk, retryAfter: retryAfter, recent: map[key]*sent{}}
}

// Start sends b's Events to the API server until ctx ends. It watches b at once, so that no
// Event emitted after Start returns is missed.
func (s *Sink) Start(ctx context.Context, b events.EventBroadcaster) error {
	stop, err := b.StartEventWatcher(func(obj runtime.Object) {
		if ev, ok := obj.(*eventsv1.Event); ok {
			s.Record(ctx, ev)
		}
	})
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		stop()
	}()
	go wait.UntilWithContext(ctx, s.refresh, refreshEvery)
	go wait.UntilWithContext(ctx, s.finish, finishAfter)
	return nil
}

// Record sends ev (a first occurrence), or makes it a series on the Event first sent for it
// (the second occurrence), or counts it in that series (later ones; the count is written
// when the series ends or on the next refresh), as the library does.
func (s *Sink) Record(ctx context.Context, ev *eventsv1.Event) {
	k := keyOf(ev)
	var out *eventsv1.Event
	s.mu.Lock()
	switch prev, ok := s.recent[k]; {
	case !ok:
		s.recent[k] = &sent{namespace: ev.Namespace, name: ev.Name, at: ev.EventTime.Time}
		out = ev.DeepCopy()
	case prev.series != nil:
		prev.series.Count++
		prev.series.LastObservedTime = metav1.MicroTime{Time: s.clock.Now()}
	default:
		prev.series = &eventsv1.EventSeries{Count: 2, LastObservedTime: metav1.MicroTime{Time: s.clock.Now()}}
		// Written as a patch of the first Event's series; should that Event be gone, this
		// occurrence is created under its name instead.
		out = ev.DeepCopy()
		out.Namespace, out.Name, out.Series = prev.namespace, prev.name, prev.series.DeepCopy()
	}
	s.mu.Unlock()
	if out != nil {
		go s.write(ctx, out)
	}
}

// write sends ev, trying again after a transient failure.
func (s *Sink) write(ctx context.Context, ev *eventsv1.Event) {
	for tries := 1; ; tries++ {
		if retry := s.send(ctx, ev); !retry {
			return
		}
		if tries >= maxTries {
			klog.FromContext(ctx).Error(nil, "Unable to write event (retry limit exceeded!)", "event", klog.KRef(ev.Namespace, ev.Name))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(wait.Jitter(s.retryAfter, 0.25)):
		}
	}
}

// send writes ev once: a series as a patch of its count (or, the Event being gone, a new
// Event), anything else as a new Event. It says whether the failure is worth another try.
func (s *Sink) send(ctx context.Context, ev *eventsv1.Event) (retry bool) {
	var err error
	if ev.Series != nil {
		var patch []byte
		if patch, err = seriesPatch(ev.Series); err != nil {
			klog.FromContext(ctx).Error(err, "Unable to build the event series patch")
			return false
		}
		_, err = s.sink.Patch(ctx, ev, patch)
	}
	if ev.Series == nil || apierrors.IsNotFound(err) {
		if ev.Reason == "" && ev.Regarding.Name == "" {
			return false // a stub for a count (refresh, finish): its Event is gone, nothing to recreate
		}
		ev.ResourceVersion = ""
		_, err = s.sink.Create(ctx, ev)
	}
	if err == nil {
		return false
	}
	switch err.(type) {
	case *restclient.RequestConstructionError:
		klog.FromContext(ctx).Error(err, "Unable to construct event (will not retry!)", "event", klog.KRef(ev.Namespace, ev.Name))
		return false
	case *apierrors.StatusError:
		// A series' Event created twice at once: the patch will do next time.
		if apierrors.IsAlreadyExists(err) && ev.Series != nil {
			return true
		}
		klog.FromContext(ctx).Error(err, "Server rejected event (will not retry!)", "event", klog.KRef(ev.Namespace, ev.Name))
		return false
	}
	klog.FromContext(ctx).Error(err, "Unable to write event (may retry after sleeping)")
	return true
}

// refresh writes the count of every open series, so that it is never far behind.
func (s *Sink) refresh(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.recent {
		if e.series != nil {
			s.send(ctx, e.countOnly())
		}
	}
}

// finish forgets the Events that can no longer be repeated into a series, writing the final
// count of the series among them.
func (s *Sink) finish(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := s.clock.Now().Add(-finishAfter)
	for k, e := range s.recent {
		switch {
		case e.series != nil && e.series.LastObservedTime.Before(&metav1.MicroTime{Time: cutoff}):
			if !s.send(ctx, e.countOnly()) {
				delete(s.recent, k)
			}
		case e.series == nil && e.at.Before(cutoff):
			delete(s.recent, k)
		}
	}
}

// countOnly is what a patch of e's series count needs.
func (e *sent) countOnly() *eventsv1.Event {
	return &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: e.name}, Series: e.series.DeepCopy()}
}

// seriesPatch is the strategic merge patch setting series (what the library computes as the
// difference between the Event with and without it).
func seriesPatch(series *eventsv1.EventSeries) ([]byte, error) {
	return json.Marshal(map[string]*eventsv1.EventSeries{"series": series})
}

func keyOf(ev *eventsv1.Event) key {
	h := sha256.New()
	write(h, ev.Type, ev.Action, ev.Reason, ev.ReportingController, ev.ReportingInstance)
	writeRef(h, ev.Regarding)
	if ev.Related != nil {
		writeRef(h, *ev.Related)
	} else {
		writeRef(h, corev1.ObjectReference{})
	}
	var k key
	h.Sum(k[:0])
	return k
}

func writeRef(h hash.Hash, r corev1.ObjectReference) {
	write(h, r.Kind, r.Namespace, r.Name, string(r.UID), r.APIVersion, r.ResourceVersion, r.FieldPath)
}

// write feeds each string with its length first, so that no two lists hash alike.
func write(h hash.Hash, ss ...string) {
	var n [8]byte
	for _, s := range ss {
		l := uint64(len(s))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(s))
	}
}
