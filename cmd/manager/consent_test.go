package main

import (
	"flag"
	"strings"
	"testing"
)

func TestConsentFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		enabled bool
		err     string
	}{
		{args: nil},
		{args: []string{"--consent-bind-address=0"}},
		{args: []string{"--consent-bind-address=:8082"}, enabled: true, err: "--consent-base-url is required"},
		{args: []string{"--consent-bind-address=:8082", "--consent-base-url=https://consent.example.com"}, enabled: true},
		{args: []string{"--consent-bind-address=:8082", "--consent-base-url=http://consent.example.com"}, enabled: true, err: "--consent-base-url"},
		{args: []string{"--consent-bind-address=:8082", "--consent-base-url=http://127.0.0.1:8082"}, enabled: true},
		{args: []string{"--consent-bind-address=:8082", "--consent-base-url=https://c.example.com/?x=1"}, enabled: true, err: "no query"},
		{args: []string{"--consent-bind-address=:8082", "--consent-base-url=https://c.example.com", "--auth-url=http://evil.example.com/auth"}, enabled: true, err: "--auth-url"},
		{args: []string{"--consent-bind-address=:8082", "--consent-base-url=https://c.example.com", "--consent-link-ttl=0s"}, enabled: true, err: "--consent-link-ttl"},
	} {
		var f consentFlags
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		f.bind(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if f.enabled() != tc.enabled {
			t.Errorf("%v: enabled = %v", tc.args, f.enabled())
		}
		if !tc.enabled {
			continue
		}
		err := f.validate()
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v: validate = %v, want %q", tc.args, err, tc.err)
		}
	}
}
