package controllers

import (
	"crypto/sha256"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/grantkeeper/grantkeeper/internal/risc"
)

// TokenIndex maps the identifiers a token-revoked security event may name (risc.Identifiers:
// a refresh token's prefix and double hash) to the grants holding that refresh token, and
// remembers each grant's client ID for the events' aud check. It is filled from the
// refresh-token Secrets the manager reads anyway (at each token request) and lives in memory
// only: no token or identifier is ever written anywhere.
//
// It holds every grant, so its size matters: an identifier is kept as the first 16 bytes of
// its SHA-256 (a fixed-size key, no string), and a token held by one grant, the usual case,
// maps straight to it; only a token several grants hold (one Secret named by several) gets
// a list. A set per identifier was about 1.5 KiB a grant.
type TokenIndex struct {
	mu      sync.RWMutex
	byID    map[idKey]types.NamespacedName
	shared  map[idKey][]types.NamespacedName
	byGrant map[types.NamespacedName]indexEntry
	clients map[string]int // client ID -> number of grants using it
}

// idKey is an identifier's digest: 128 bits make a collision among even millions of
// identifiers far less likely than a forged event getting past the signature check.
type idKey [16]byte

func keyOf(id string) idKey {
	sum := sha256.Sum256([]byte(id))
	return idKey(sum[:16])
}

type indexEntry struct {
	ids      []idKey
	clientID string
}

// NewTokenIndex returns an empty index.
func NewTokenIndex() *TokenIndex {
	return &TokenIndex{byID: map[idKey]types.NamespacedName{}, shared: map[idKey][]types.NamespacedName{},
		byGrant: map[types.NamespacedName]indexEntry{}, clients: map[string]int{}}
}

// Put records that grant holds refreshToken, issued to clientID (replacing what it held).
func (x *TokenIndex) Put(grant types.NamespacedName, refreshToken, clientID string) {
	if x == nil || refreshToken == "" {
		return
	}
	ids := risc.Identifiers(refreshToken)
	keys := make([]idKey, len(ids))
	for i, id := range ids {
		keys[i] = keyOf(id)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(grant)
	for _, k := range keys {
		switch holder, ok := x.byID[k]; {
		case ok:
			delete(x.byID, k)
			x.shared[k] = []types.NamespacedName{holder, grant}
		case x.shared[k] != nil:
			x.shared[k] = append(x.shared[k], grant)
		default:
			x.byID[k] = grant
		}
	}
	x.byGrant[grant] = indexEntry{ids: keys, clientID: clientID}
	if clientID != "" {
		x.clients[clientID]++
	}
}

// Remove forgets a grant (deleted).
func (x *TokenIndex) Remove(grant types.NamespacedName) {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(grant)
}

func (x *TokenIndex) removeLocked(grant types.NamespacedName) {
	e, ok := x.byGrant[grant]
	if !ok {
		return
	}
	for _, k := range e.ids {
		if x.byID[k] == grant {
			delete(x.byID, k)
			continue
		}
		holders := slices.DeleteFunc(x.shared[k], func(g types.NamespacedName) bool { return g == grant })
		switch len(holders) {
		case 0:
			delete(x.shared, k)
		case 1:
			delete(x.shared, k)
			x.byID[k] = holders[0]
		default:
			x.shared[k] = holders
		}
	}
	if e.clientID != "" {
		if x.clients[e.clientID]--; x.clients[e.clientID] <= 0 {
			delete(x.clients, e.clientID)
		}
	}
	delete(x.byGrant, grant)
}

// Grants are the grants holding the token an identifier (risc.Subject.TokenKey) names.
func (x *TokenIndex) Grants(key string) []types.NamespacedName {
	k := keyOf(key)
	x.mu.RLock()
	defer x.mu.RUnlock()
	if g, ok := x.byID[k]; ok {
		return []types.NamespacedName{g}
	}
	return slices.Clone(x.shared[k])
}

// HasClient reports whether an indexed grant uses clientID.
func (x *TokenIndex) HasClient(clientID string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.clients[clientID] > 0
}

// ClientOf is the client ID grant's refresh token was issued to, "" when not known.
func (x *TokenIndex) ClientOf(grant types.NamespacedName) string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.byGrant[grant].clientID
}

// Len is the number of indexed grants.
func (x *TokenIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byGrant)
}

// noteRefreshToken indexes the refresh token a token request used (or a rotation stored).
func (r *GrantReconciler) noteRefreshToken(grant types.NamespacedName, refreshToken, clientID string) {
	r.TokenIndex.Put(grant, refreshToken, clientID)
}
