package eventsink

import (
	"context"
	"os"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/grantkeeper/grantkeeper/test/framework/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

// The Events a user lists are those the library's own sink would write: one per first
// occurrence, a repeat counted as a series on it, the final count written when the series
// ends, and a repeat after that a new Event. And nothing is remembered past that.
func TestEventsAndSeriesAsTheLibraryWritesThem(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "events-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "grant", Namespace: ns.Name}}
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	cs, err := eventsv1client.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	s := New(&events.EventSinkImpl{Interface: cs}, clk)
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs})
	defer b.Shutdown()
	if err := s.Start(ctx, b); err != nil {
		t.Fatal(err)
	}
	rec := b.NewRecorder(env.Scheme, "grantkeeper-test")

	rec.Eventf(obj, nil, corev1.EventTypeNormal, "TokenIssued", "Refresh", "First access token written to Secret %q", "grant-access-token")
	evs := waitEvents(t, ns.Name, func(evs []eventsv1.Event) bool { return len(evs) == 1 })
	first := evs[0]
	if first.Reason != "TokenIssued" || first.Action != "Refresh" || first.Type != corev1.EventTypeNormal ||
		first.Note != `First access token written to Secret "grant-access-token"` || first.ReportingController != "grantkeeper-test" ||
		first.Regarding.Name != "grant" || first.Regarding.UID != obj.UID || first.Series != nil {
		t.Fatalf("first Event %+v", first)
	}

	// A different reason is a different Event.
	rec.Eventf(obj, nil, corev1.EventTypeWarning, "RefreshFailed", "Refresh", "Refresh attempt %d failed", 1)
	waitEvents(t, ns.Name, func(evs []eventsv1.Event) bool { return len(evs) == 2 })

	// The same again: a series of 2 on the first Event, no new Event.
	rec.Eventf(obj, nil, corev1.EventTypeNormal, "TokenIssued", "Refresh", "again")
	evs = waitEvents(t, ns.Name, func(evs []eventsv1.Event) bool {
		e := find(evs, first.Name)
		return e != nil && e.Series != nil && e.Series.Count == 2
	})
	if len(evs) != 2 {
		t.Fatalf("%d Events after a repeat, want 2", len(evs))
	}

	// A third is counted in memory, written by the refresh or when the series ends.
	rec.Eventf(obj, nil, corev1.EventTypeNormal, "TokenIssued", "Refresh", "and again")
	waitFor(t, "the third occurrence counted", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		e := s.recent[keyOf(&first)]
		return e != nil && e.series != nil && e.series.Count == 3
	})
	// The periodic refresh (every 30 minutes) writes an open series' count, and the series
	// stays open.
	s.refresh(ctx)
	waitEvents(t, ns.Name, func(evs []eventsv1.Event) bool {
		e := find(evs, first.Name)
		return e != nil && e.Series != nil && e.Series.Count == 3
	})
	rec.Eventf(obj, nil, corev1.EventTypeNormal, "TokenIssued", "Refresh", "a fourth time")
	waitFor(t, "the fourth occurrence counted in the open series", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		e := s.recent[keyOf(&first)]
		return e != nil && e.series != nil && e.series.Count == 4
	})
	clk.Step(finishAfter + time.Minute)
	s.finish(ctx)
	waitEvents(t, ns.Name, func(evs []eventsv1.Event) bool {
		e := find(evs, first.Name)
		return e != nil && e.Series != nil && e.Series.Count == 4
	})
	s.mu.Lock()
	remembered := len(s.recent)
	s.mu.Unlock()
	if remembered != 0 {
		t.Fatalf("%d Events remembered after their series ended, want 0", remembered)
	}

	// After that, the same occurrence is a new Event.
	rec.Eventf(obj, nil, corev1.EventTypeNormal, "TokenIssued", "Refresh", "later")
	waitEvents(t, ns.Name, func(evs []eventsv1.Event) bool { return len(evs) == 3 })
}

func find(evs []eventsv1.Event, name string) *eventsv1.Event {
	for i := range evs {
		if evs[i].Name == name {
			return &evs[i]
		}
	}
	return nil
}

func waitEvents(t *testing.T, ns string, ok func([]eventsv1.Event) bool) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	waitFor(t, "the Events", func() bool {
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		return ok(list.Items)
	})
	return list.Items
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}
