package grantinputs

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
)

// refreshToken is spec.refreshTokenSecretRef with an OAuth client from spec.clientSecretRef
// (a Secret in the grant's namespace) or spec.clientRef (a client object). The one form a
// consent link can fill.
type refreshToken struct {
	secret, key string
	// clientSecret is spec.clientSecretRef's Secret; "" when client names a client object.
	clientSecret string
	client       *ClientRef
}

func (f refreshToken) Kind() string { return FormRefreshToken }

func (f refreshToken) Secrets() []string {
	if f.client != nil {
		// The client object's Secret is the client's, watched through it.
		return []string{f.secret}
	}
	return []string{f.clientSecret, f.secret}
}

func (f refreshToken) Shared() string { return f.clientSecret }

func (f refreshToken) RefreshToken() *TokenLocation {
	return &TokenLocation{Secret: f.secret, Key: f.key, Recordable: true,
		get: func(data map[string][]byte) (string, *credentials.Problem) {
			return credentials.RefreshToken(f.secret, data, f.key)
		},
		put: func(_ []byte, token string) ([]byte, error) { return []byte(token), nil },
	}
}

func (f refreshToken) ClientRef() *ClientRef { return f.client }

func (f refreshToken) ClientLabel() (kind, name string) {
	if f.client != nil {
		return f.client.Kind, f.client.Name
	}
	return "Secret", f.clientSecret
}

// read takes the client from its record or Secret (the grant's clientSecretRef, or the one
// the client object names), and the refresh token from its record or Secret.
func (f refreshToken) read(ctx context.Context, r *Reader, ns string, co *ClientObject, c *Credential) (*credentials.Problem, error) {
	ckey, cfield := types.NamespacedName{Namespace: ns, Name: f.clientSecret}, "spec.clientSecretRef"
	setVersion := func(m *metav1.ObjectMeta) { c.versions[ckey.Name] = m }
	if co != nil && co.Provider != nil {
		return f.readProvider(ctx, r, ns, co, c)
	}
	if f.client != nil {
		if co == nil || co.Secret.Namespace == "" {
			// Decide reports these before any request; this is a guard.
			return &credentials.Problem{Reason: oauthv1alpha1.ReasonClientNotReady, Message: "the client object spec.clientRef names is not usable"}, nil
		}
		ckey, cfield = co.Secret, co.Field()
		setVersion = func(m *metav1.ObjectMeta) { c.clientVersion = m }
	}
	cl, clientSecret, recorded, err := r.client(ctx, ckey, setVersion)
	if err != nil {
		return nil, err
	}
	if !recorded && clientSecret == nil {
		return SecretNotFound(ckey, cfield, "grant"), nil
	}
	l := f.RefreshToken()
	rt, rp, absent, err := r.refreshToken(ctx, ns, l, c)
	if err != nil || absent {
		c.RefreshTokenMissing = err == nil
		return SecretNotFound(types.NamespacedName{Namespace: ns, Name: f.secret}, "spec.refreshTokenSecretRef", "grant"), err
	}
	if !recorded {
		var p *credentials.Problem
		if cl, p = credentials.ParseClient(clientSecret.Name, clientSecret.Data); p != nil {
			return p, nil
		}
		r.clients.put(clientSecret, cl)
	}
	c.Client, c.RefreshToken = cl, rt
	c.RefreshTokenMissing = rp != nil && rp.Reason == oauthv1alpha1.ReasonSecretKeyMissing
	return rp, nil
}

// readLive reads the refresh token, and the client id when the grant's own clientSecretRef
// names the client.
func (f refreshToken) readLive(ctx context.Context, live secretGetter, ns string) (Live, error) {
	l := Live{Secret: f.secret}
	s, err := liveSecret(ctx, live, types.NamespacedName{Namespace: ns, Name: f.secret})
	if err != nil || s == nil {
		return l, err
	}
	l.Found = true
	l.RefreshToken = f.RefreshToken().Stored(s.Data)
	if l.RefreshToken == "" || f.client != nil {
		return l, nil
	}
	cs, err := liveSecret(ctx, live, types.NamespacedName{Namespace: ns, Name: f.clientSecret})
	if err != nil || cs == nil {
		return l, err
	}
	if cl, p := credentials.ParseClient(cs.Name, cs.Data); p == nil {
		l.ClientID = cl.ID
	}
	return l, nil
}

// readProvider reads a provider grant's refresh token and its provider client.
func (f refreshToken) readProvider(ctx context.Context, r *Reader, ns string, co *ClientObject, c *Credential) (*credentials.Problem, error) {
	if p, err := r.readProviderClient(ctx, co, f.client.params, false, c); p != nil || err != nil {
		return p, err
	}
	rt, rp, absent, err := r.refreshToken(ctx, ns, f.RefreshToken(), c)
	if err != nil || absent {
		c.RefreshTokenMissing = err == nil
		return SecretNotFound(types.NamespacedName{Namespace: ns, Name: f.secret}, "spec.refreshTokenSecretRef", "grant"), err
	}
	c.RefreshToken = rt
	c.RefreshTokenMissing = rp != nil && rp.Reason == oauthv1alpha1.ReasonSecretKeyMissing
	return rp, nil
}
