package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

func TestParseCalls(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: refreshCalls},
		{in: "  ", want: refreshCalls},
		{in: "put,patch", want: []string{"put", "patch"}},
		{in: " GET , Put ,patch", want: []string{"get", "put", "patch"}},
		{in: "patch", want: []string{"patch"}},
		{in: "get,delete", wantErr: `"delete" is not one of`},
		{in: "put,put", wantErr: `"put" given twice`},
		{in: "put,", wantErr: `"" is not one of`},
	} {
		got, err := parseCalls(tc.in, refreshCalls)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseCalls(%q): error %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseCalls(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestManagerWorkers(t *testing.T) {
	for _, tc := range []struct {
		args string
		want int
	}{
		{"", 32},
		{"--kube-api-qps=500", 32},
		{"--max-concurrent-reconciles=8", 8},
		{"-max-concurrent-reconciles=8", 8},
		{"--max-concurrent-reconciles 12 --kube-api-qps=500", 12},
		{"--max-concurrent-reconciles=8 --max-concurrent-reconciles=4", 4},
		{"--max-concurrent-reconciles=zero", 32},
		{"--max-concurrent-reconciles=0", 32},
		{"max-concurrent-reconciles=8", 32}, // not a flag
	} {
		if got := managerWorkers(strings.Fields(tc.args), 32); got != tc.want {
			t.Errorf("managerWorkers(%q) = %d, want %d", tc.args, got, tc.want)
		}
	}
}

func TestDemandPerSecond(t *testing.T) {
	for _, tc := range []struct {
		grants   int
		lifetime time.Duration
		want     float64
	}{
		// 60-second tokens: refreshed 20 s before expiry less a second of jitter on
		// average, so every 39 s.
		{10000, time.Minute, 10000.0 / 39},
		{1000, time.Minute, 1000.0 / 39},
		// Google's one-hour tokens: every 39 minutes.
		{1000000, time.Hour, 1000000.0 / (39 * 60)},
		{0, time.Minute, 0},
		{10, 0, 0},
	} {
		if got := demandPerSecond(tc.grants, tc.lifetime); got < tc.want*0.999 || got > tc.want*1.001 {
			t.Errorf("demandPerSecond(%d, %s) = %.2f, want %.2f", tc.grants, tc.lifetime, got, tc.want)
		}
	}
}

func TestLimitVerdict(t *testing.T) {
	for _, tc := range []struct {
		demand, limit float64
		prefix        string
		mentions      []string
	}{
		{256, 115, "OVER THE LIMIT", []string{"256", "115", "2.23"}},
		{256, 300, "NEAR THE LIMIT", []string{"256", "300", "0.85"}},
		{26, 300, "within the limit", []string{"0.09"}},
		{256, 0, "LIMIT UNKNOWN", nil},
	} {
		got := limitVerdict(tc.demand, tc.limit)
		if !strings.HasPrefix(got, tc.prefix) {
			t.Errorf("limitVerdict(%v, %v) = %q, want it to start %q", tc.demand, tc.limit, got, tc.prefix)
		}
		for _, m := range tc.mentions {
			if !strings.Contains(got, m) {
				t.Errorf("limitVerdict(%v, %v) = %q, want it to mention %q", tc.demand, tc.limit, got, m)
			}
		}
	}
}

// The limit loop's status patch carries what the manager's does after a refresh: the
// token's times and the Ready condition whose message names them, nothing else.
func TestStatusMergePatch(t *testing.T) {
	at := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	first := refreshedStatus(oauthv1alpha1.GrantStatus{}, "g1", at)
	next := refreshedStatus(first, "g1", at.Add(40*time.Minute))
	patch, err := statusMergePatch(first, next)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Status map[string]json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(patch, &got); err != nil {
		t.Fatalf("%s: %v", patch, err)
	}
	var keys []string
	for k := range got.Status {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"conditions", "expiresAt", "lastRefreshTime", "refreshTime"}; !slices.Equal(keys, want) {
		t.Errorf("patch %s changes %v, want %v", patch, keys, want)
	}
	if same, _ := statusMergePatch(next, next); string(same) != "{}" {
		t.Errorf("patch between equal statuses = %s, want {}", same)
	}
}
