package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/grantkeeper/grantkeeper/internal/risc"
)

// TokenIndex maps the identifiers a token-revoked security event may name (risc.Identifiers:
// a refresh token's prefix and double hash) to the grants holding that refresh token, and
// remembers each grant's client ID for the events' aud check. It is filled from the
// refresh-token Secrets the manager reads anyway (at each token request) and lives in memory
// only: no token or identifier is ever written anywhere.
type TokenIndex struct {
	mu      sync.RWMutex
	byID    map[string]map[types.NamespacedName]struct{}
	byGrant map[types.NamespacedName]indexEntry
	clients map[string]int // client ID -> number of grants using it
}

type indexEntry struct {
	ids      []string
	clientID string
}

// NewTokenIndex returns an empty index.
func NewTokenIndex() *TokenIndex {
	return &TokenIndex{byID: map[string]map[types.NamespacedName]struct{}{}, byGrant: map[types.NamespacedName]indexEntry{}, clients: map[string]int{}}
}

// Put records that grant holds refreshToken, issued to clientID (replacing what it held).
func (x *TokenIndex) Put(grant types.NamespacedName, refreshToken, clientID string) {
	if x == nil || refreshToken == "" {
		return
	}
	ids := risc.Identifiers(refreshToken)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(grant)
	for _, id := range ids {
		set := x.byID[id]
		if set == nil {
			set = map[types.NamespacedName]struct{}{}
			x.byID[id] = set
		}
		set[grant] = struct{}{}
	}
	x.byGrant[grant] = indexEntry{ids: ids, clientID: clientID}
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
	for _, id := range e.ids {
		delete(x.byID[id], grant)
		if len(x.byID[id]) == 0 {
			delete(x.byID, id)
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
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]types.NamespacedName, 0, len(x.byID[key]))
	for g := range x.byID[key] {
		out = append(out, g)
	}
	return out
}

// HasClient reports whether an indexed grant uses clientID.
func (x *TokenIndex) HasClient(clientID string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.clients[clientID] > 0
}

// Len is the number of indexed grants.
func (x *TokenIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byGrant)
}

// noteRefreshToken indexes the refresh token a token request used (or a rotation stored).
func (r *GoogleOAuthGrantReconciler) noteRefreshToken(grant types.NamespacedName, refreshToken, clientID string) {
	r.TokenIndex.Put(grant, refreshToken, clientID)
}
