package risc

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
)

// DefaultConfigurationURL is Google's RISC configuration document.
const DefaultConfigurationURL = "https://accounts.google.com/.well-known/risc-configuration"

// DefaultRefetchFloor is the least time between two fetches of the configuration and key
// set: an unknown kid makes the verifier look again, but a stream of forged kids must not
// make it hammer Google.
const DefaultRefetchFloor = 10 * time.Second

// maxDocument bounds the configuration document and the key set (Google's are ~1 KiB).
const maxDocument = 256 << 10

// Verifier checks Security Event Tokens as Google's guide says: issuer and jwks_uri from the
// configuration document (cached; fetched again when a token names an unknown kid, at most
// once per RefetchFloor after the last completed fetch, detached from the request), the kid in the key set, an RS256 signature, iss equal to the
// configuration's issuer, aud one of our client IDs, exp not checked (events are historical).
//
// The JWT checks are golang-jwt's (alg allow-list, RS256 signature) and the key set is
// parsed by go-jose; only the caching is ours: keyfunc-style libraries refresh on a timer or
// fetch unboundedly, and Google's flow is "refetch on unknown kid, with a floor".
type Verifier struct {
	ConfigurationURL string
	HTTP             *http.Client
	RefetchFloor     time.Duration
	Now              func() time.Time

	mu      sync.Mutex
	issuer  string
	keys    map[string]*rsa.PublicKey
	fetched time.Time // when the last fetch of the configuration and keys completed (or failed)
	flight  singleflight.Group
	// Fetches counts fetches of the configuration document (tests read it).
	fetches int
}

// Fetches is how many times the configuration and key set were fetched.
func (v *Verifier) Fetches() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.fetches
}

type setClaims struct {
	Issuer   string                     `json:"iss"`
	Audience jwt.ClaimStrings           `json:"aud"`
	IssuedAt *jwt.NumericDate           `json:"iat"`
	JTI      string                     `json:"jti"`
	Events   map[string]json.RawMessage `json:"events"`
}

// The jwt.Claims methods: no time claims are checked (WithoutClaimsValidation), these exist
// to satisfy the interface.
func (c *setClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (c *setClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *setClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c *setClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *setClaims) GetSubject() (string, error)                  { return "", nil }
func (c *setClaims) GetAudience() (jwt.ClaimStrings, error)       { return c.Audience, nil }

// Verify checks raw and returns its events. audience reports whether a client ID is one of
// ours. Errors name what failed, never the token's content.
func (v *Verifier) Verify(ctx context.Context, raw string, audience func(context.Context, string) bool) (*SET, error) {
	var c setClaims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithoutClaimsValidation())
	_, err := p.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid in the header")
		}
		return v.key(ctx, kid)
	})
	if err != nil {
		return nil, fmt.Errorf("invalid security event token: %w", err)
	}
	if iss := v.currentIssuer(); c.Issuer != iss {
		return nil, fmt.Errorf("iss is not the configuration's issuer %q", iss)
	}
	ok := false
	for _, a := range c.Audience {
		if audience(ctx, a) {
			ok = true
			break
		}
	}
	if !ok {
		return nil, errors.New("aud names no OAuth client a grant uses")
	}
	if c.JTI == "" || len(c.JTI) > 256 {
		return nil, errors.New("no usable jti claim")
	}
	evs, err := parseEvents(c.Events)
	if err != nil {
		return nil, err
	}
	for i := range evs {
		evs[i].Audience = c.Audience
	}
	set := &SET{JTI: c.JTI, Events: evs}
	if c.IssuedAt != nil {
		set.IssuedAt = c.IssuedAt.Time
	}
	return set, nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) currentIssuer() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.issuer
}

// key returns the public key with kid, fetching the configuration and key set when kid is
// unknown and the floor allows. The fetch runs detached from ctx (a sender that hangs up must
// not cancel it for everyone) and once at a time: concurrent unknown kids share one flight,
// and ctx only bounds how long this request waits for it.
func (v *Verifier) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	k, due := v.lookup(kid)
	if k != nil {
		return k, nil
	}
	if !due {
		return nil, errors.New("kid is not in the key set")
	}
	ch := v.flight.DoChan("keys", func() (any, error) { return nil, v.refresh() })
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if k, _ := v.lookup(kid); k != nil {
			return k, nil
		}
		if res.Err != nil {
			return nil, res.Err
		}
	}
	return nil, errors.New("kid is not in the key set, even after fetching it again")
}

// lookup is the cached key with kid and whether the floor allows another fetch.
func (v *Verifier) lookup(kid string) (*rsa.PublicKey, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k := v.keys[kid]; k != nil {
		return k, false
	}
	return nil, v.dueLocked()
}

func (v *Verifier) dueLocked() bool {
	floor := v.RefetchFloor
	if floor == 0 {
		floor = DefaultRefetchFloor
	}
	return v.fetched.IsZero() || v.now().Sub(v.fetched) >= floor
}

// refresh fetches the configuration and key set with its own timeout, outside the mutex.
// The floor starts when a fetch completes (whatever its outcome); a failed fetch keeps the
// last good keys.
func (v *Verifier) refresh() error {
	v.mu.Lock()
	if !v.dueLocked() { // a flight that just ended already fetched
		v.mu.Unlock()
		return nil
	}
	v.fetches++
	v.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	issuer, keys, err := v.fetch(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fetched = v.now()
	if err != nil {
		return err
	}
	v.issuer, v.keys = issuer, keys
	return nil
}

// fetchTimeout bounds one fetch of the configuration and key set together.
const fetchTimeout = 20 * time.Second

func (v *Verifier) fetch(ctx context.Context) (string, map[string]*rsa.PublicKey, error) {
	var conf struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := v.getJSON(ctx, v.ConfigurationURL, &conf); err != nil {
		return "", nil, fmt.Errorf("fetching the RISC configuration: %w", err)
	}
	if conf.Issuer == "" || conf.JWKSURI == "" {
		return "", nil, errors.New("the RISC configuration lacks issuer or jwks_uri")
	}
	var set jose.JSONWebKeySet
	if err := v.getJSON(ctx, conf.JWKSURI, &set); err != nil {
		return "", nil, fmt.Errorf("fetching the RISC key set: %w", err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if pub, ok := k.Key.(*rsa.PublicKey); ok && k.KeyID != "" && (k.Use == "" || k.Use == "sig") {
			keys[k.KeyID] = pub
		}
	}
	return conf.Issuer, keys, nil
}

func (v *Verifier) getJSON(ctx context.Context, url string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	hc := v.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, maxDocument)).Decode(out)
}
