package main

import (
	"strings"
	"testing"
)

func TestComponents(t *testing.T) {
	if _, err := parseComponents("controllers"); err == nil || !strings.Contains(err.Error(), "all, manager or endpoints") {
		t.Errorf("parseComponents(controllers) = %v", err)
	}
	for _, tc := range []struct {
		c                components
		consent, riscAdr string
		webhook          bool
		err              string
	}{
		{c: componentsAll, consent: ":8082", riscAdr: ":8083", webhook: true},
		{c: componentsManager, webhook: true},
		{c: componentsManager, consent: ":8082", err: "--consent-bind-address with --components=manager"},
		{c: componentsManager, riscAdr: ":8083", err: "--risc-bind-address with --components=manager"},
		{c: componentsEndpoints, consent: ":8082"},
		{c: componentsEndpoints, riscAdr: ":8083"},
		{c: componentsEndpoints, consent: "0", riscAdr: "0", err: "serves nothing"},
		{c: componentsEndpoints, consent: ":8082", webhook: true, err: "--enable-injection-webhook"},
	} {
		err := tc.c.check(tc.consent, tc.riscAdr, tc.webhook)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v: %v, want %q", tc, err, tc.err)
		}
	}
}
