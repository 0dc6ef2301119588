package main

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/grantkeeper/grantkeeper/internal/eventsink"
)

// grantEvents returns a recorder of the reconciler's Events: client-go's events library makes
// them as controller-runtime's recorder does, and internal/eventsink writes them without
// holding a copy of each for six minutes (the library's sink does; at 10,000 grants getting
// their first tokens that was an eighth of the manager's live heap).
func grantEvents(mgr ctrl.Manager, name string, log logr.Logger) (events.EventRecorder, error) {
	cs, err := eventsv1client.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, fmt.Errorf("events client: %w", err)
	}
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs})
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), log))
	if err := eventsink.New(&events.EventSinkImpl{Interface: cs}, clock.RealClock{}).Start(ctx, b); err != nil {
		cancel()
		return nil, fmt.Errorf("starting the event sink: %w", err)
	}
	stopLogging, err := b.StartLogging(log.V(1))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting event logging: %w", err)
	}
	// Stopped with the manager; started at once above so that no early Event is dropped.
	if err := mgr.Add(manager.RunnableFunc(func(stop context.Context) error {
		<-stop.Done()
		stopLogging()
		cancel()
		b.Shutdown()
		return nil
	})); err != nil {
		cancel()
		return nil, err
	}
	return b.NewRecorder(mgr.GetScheme(), name), nil
}
