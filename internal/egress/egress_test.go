package egress

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	none, loop, private, both := Policy{}, Policy{AllowLoopback: true}, Policy{AllowPrivate: true}, Policy{AllowLoopback: true, AllowPrivate: true}
	for _, tc := range []struct {
		addr  string
		allow []Policy // the policies that admit addr; every other one refuses it
	}{
		{"8.8.8.8:443", []Policy{none, loop, private, both}},
		{"[2001:4860:4860::8888]:443", []Policy{none, loop, private, both}},
		{"8.8.8.8:9443", []Policy{none, loop, private, both}}, // any port
		{"127.0.0.1:8081", []Policy{loop, both}},              // the manager's health port
		{"127.0.0.53:53", []Policy{loop, both}},
		{"[::1]:6060", []Policy{loop, both}},
		{"0.0.0.0:8443", nil},                      // reaches loopback on Linux, under every policy refused
		{"[::ffff:127.0.0.1]:8443", nil},           // loopback written as IPv4-mapped IPv6
		{"169.254.169.254:80", nil},                // the cloud metadata server: never
		{"[fe80::1]:80", nil},                      // link-local
		{"10.96.0.1:443", []Policy{private, both}}, // a cluster Service
		{"172.20.3.4:8443", []Policy{private, both}},
		{"192.168.1.10:443", []Policy{private, both}},
		{"100.64.0.10:443", []Policy{private, both}},
		{"[fd00::10]:443", []Policy{private, both}},
		{"224.0.0.1:443", nil}, // multicast
	} {
		for _, p := range []Policy{none, loop, private, both} {
			want := false
			for _, a := range tc.allow {
				want = want || a == p
			}
			network := "tcp4" // what net.Dialer.Control is given
			if tc.addr[0] == '[' {
				network = "tcp6"
			}
			err := p.Check(network, tc.addr)
			if (err == nil) != want {
				t.Errorf("%+v.Check(%s) = %v, want allowed=%v", p, tc.addr, err, want)
			}
			if err != nil && !errors.Is(err, ErrRefused) {
				t.Errorf("%+v.Check(%s): %v does not wrap ErrRefused", p, tc.addr, err)
			}
		}
	}
}

// TestTransport: the check runs on the address dialled, so a name resolving to loopback
// ("localhost") is refused like the literal address, before any byte reaches the server.
func TestTransport(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	get := func(p Policy, u string) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := (&http.Client{Transport: p.Transport(5 * time.Second)}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		if err := get(Policy{}, u); !errors.Is(err, ErrRefused) {
			t.Fatalf("GET %s under the default policy: %v, want ErrRefused", u, err)
		}
	}
	if hits != 0 {
		t.Fatalf("the refused server saw %d requests", hits)
	}
	if err := get(Policy{AllowLoopback: true}, srv.URL); err != nil || hits != 1 {
		t.Fatalf("GET %s with loopback allowed: %v, %d requests", srv.URL, err, hits)
	}
}
