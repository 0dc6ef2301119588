package controllers

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

func TestDrainOutlivesShutdownByTheGrace(t *testing.T) {
	parent, stop := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "logger"))
	d, cancel := drain(parent, time.Hour)
	defer cancel()
	stop()
	if d.Err() != nil {
		t.Fatalf("the reconcile's context ended with the manager's (%v); it must go on for the grace period", d.Err())
	}
	if d.Value(ctxKey{}) != "logger" {
		t.Error("the reconcile's context lost the values (logger, reconcile ID) of the manager's")
	}
	cancel()
	if !errors.Is(context.Cause(d), context.Canceled) {
		t.Errorf("after cancel: cause %v, want context.Canceled", context.Cause(d))
	}
}

func TestDrainEndsWhenTheGraceIsOver(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	d, cancel := drain(parent, 10*time.Millisecond)
	defer cancel()
	select {
	case <-d.Done():
		t.Fatal("the reconcile's context ended before the manager began to stop")
	default:
	}
	stop()
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the reconcile's context did not end after the grace period")
	}
	if !errors.Is(context.Cause(d), errShutdownGraceOver) {
		t.Errorf("cause %v, want errShutdownGraceOver", context.Cause(d))
	}
}
