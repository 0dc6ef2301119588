// Package egress is where grantkeeper may connect when a tenant chooses the URL: an
// OAuthClient's issuerURL and endpoints. Without it, anyone who may create an OAuthClient
// makes the manager send requests to any address it can reach (server-side request forgery):
// its own metrics, health and pprof ports on loopback, the cloud metadata server on a
// link-local address, or services inside the cluster.
//
// The check runs when a connection is dialled, on the address actually dialled, so a name
// that resolves (or is re-resolved, DNS rebinding) to a refused address is refused too.
// code.dny.dev/ssrf does the address classification: it follows IANA's special-purpose
// registries (loopback, link-local, private, documentation, multicast and the rest), which a
// hand-written list would get wrong or let go stale.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// Policy says which special-purpose addresses a tenant's URL may reach. The zero Policy
// allows public addresses only.
type Policy struct {
	// AllowLoopback admits 127.0.0.0/8 and ::1: the manager Pod's own network namespace.
	// For tests and local development only (--allow-loopback-providers).
	AllowLoopback bool
	// AllowPrivate admits the private ranges (RFC 1918, RFC 6598 shared space, IPv6 unique
	// local addresses), where a provider inside the cluster or the company network lives
	// (--allow-private-network-providers). Link-local addresses (the cloud metadata
	// server at 169.254.169.254) are never admitted.
	AllowPrivate bool
}

// PrivateV4 and PrivateV6 are the ranges AllowPrivate admits.
var (
	PrivateV4 = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),
	}
	PrivateV6 = []netip.Prefix{netip.MustParsePrefix("fc00::/7")}
)

// ErrRefused wraps every refusal, so callers can tell a policy refusal (which will not heal
// by itself) from a network failure.
var ErrRefused = errors.New("refused by grantkeeper's egress policy")

// Check reports whether addr ("ip:port", as net.Dialer.Control receives it) may be dialled.
func (p Policy) Check(network, addr string) error {
	return p.check(p.guardian(), network, addr)
}

func (p Policy) check(g *ssrf.Guardian, network, addr string) error {
	if err := g.Safe(network, addr, nil); err != nil {
		return fmt.Errorf("%w: %s", ErrRefused, p.hint(err))
	}
	return nil
}

func (p Policy) hint(err error) string {
	msg := err.Error()
	if !errors.Is(err, ssrf.ErrProhibitedIP) {
		return msg
	}
	return msg + " (a provider must be reachable at a public address; an administrator may admit private networks with the manager's --allow-private-network-providers flag)"
}

func (p Policy) guardian() *ssrf.Guardian {
	var v4, v6 []netip.Prefix
	if p.AllowLoopback {
		v4 = append(v4, netip.MustParsePrefix("127.0.0.0/8"))
		v6 = append(v6, netip.MustParsePrefix("::1/128"))
	}
	if p.AllowPrivate {
		v4 = append(v4, PrivateV4...)
		v6 = append(v6, PrivateV6...)
	}
	// Any port: providers serve on 8443, 9443 and others; the address is what matters.
	return ssrf.New(ssrf.WithAnyPort(), ssrf.WithAllowedV4Prefixes(v4...), ssrf.WithAllowedV6Prefixes(v6...))
}

// Transport is an HTTP transport that dials only what p allows. It uses no proxy: through a
// proxy the dialled address is the proxy's, and the destination would go unchecked.
func (p Policy) Transport(responseTimeout time.Duration) *http.Transport {
	g := p.guardian()
	d := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(network, addr string, _ syscall.RawConn) error { return p.check(g, network, addr) },
	}
	return &http.Transport{
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: responseTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   2,
	}
}
