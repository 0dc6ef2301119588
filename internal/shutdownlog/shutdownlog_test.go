package shutdownlog

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
)

func TestErrorsOfTheShutdownAreInfo(t *testing.T) {
	canceledPost := &url.Error{Op: "Post", URL: "https://10.0.0.1/apis/events.k8s.io/v1/namespaces/a/events", Err: context.Canceled}
	for _, tc := range []struct {
		name      string
		stopping  bool
		err       error
		wantError bool
	}{
		{"a cancellation after the shutdown began", true, canceledPost, false},
		{"a wrapped cancellation after the shutdown began", true, fmt.Errorf("writing status: %w", context.Canceled), false},
		{"a cancellation while running", false, canceledPost, true},
		{"another error after the shutdown began", true, errors.New("conflict"), true},
		{"a timeout after the shutdown began", true, context.DeadlineExceeded, true},
		{"the released Lease after the shutdown began", true, errors.New("leader election lost"), false},
		{"a Lease lost while running", false, errors.New("leader election lost"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			base := funcr.New(func(prefix, args string) { lines = append(lines, prefix+" "+args) }, funcr.Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.stopping {
				cancel()
			}
			New(base, ctx).WithName("events").WithValues("k", "v").Error(tc.err, msg(tc.err))
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want 1: %q", len(lines), lines)
			}
			isError := !strings.Contains(lines[0], `"level"=`) // funcr gives info lines a level, error lines none
			if isError != tc.wantError {
				t.Errorf("logged %s, want error level: %v", lines[0], tc.wantError)
			}
			if !strings.Contains(lines[0], strings.Trim(strconv.Quote(tc.err.Error()), `"`)) || !strings.Contains(lines[0], "events") || !strings.Contains(lines[0], `"k"="v"`) {
				t.Errorf("the line lost the error, the logger's name or its values: %s", lines[0])
			}
		})
	}
}

// msg is the message controller-runtime and client-go log these errors with.
func msg(err error) string {
	if err.Error() == "leader election lost" {
		return "error received after stop sequence was engaged"
	}
	return "Unable to write event"
}
