package main

import (
	"context"
	"flag"
	"strings"
	"testing"
)

// TestWebhookFlags: the webhook is off unless asked for, and turning it on without what it
// needs fails at start with the flag to set.
func TestWebhookFlags(t *testing.T) {
	for _, c := range []struct {
		args      []string
		namespace string
		wantErr   string
	}{
		{nil, "", ""}, // off: nothing needed
		{[]string{"--enable-injection-webhook"}, "grantkeeper-system", "--metadata-server-image"},
		{[]string{"--enable-injection-webhook", "--metadata-server-image=ms:v1"}, "", "--manager-namespace"},
	} {
		t.Setenv("METADATA_SERVER_IMAGE", "")
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		f := bindWebhookFlags(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		err := f.setup(context.Background(), nil, c.namespace, nil) // fails before using the manager
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%v: error %v, want one naming %s", c.args, err, c.wantErr)
		}
	}
}
