package grantinputs

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/oauthtoken"
)

// ProviderClient is what an OAuthClient or ClusterOAuthClient gives a grant's token
// requests: its id and auth method (spec), the endpoints in use (status: discovered, or
// spec.endpoints), and the key of its Secret that holds the client secret or signing key.
type ProviderClient struct {
	ClientID  string
	Method    oauthv1alpha1.TokenEndpointAuthMethod
	Endpoints oauthv1alpha1.OAuthEndpointsStatus
	// Key is the key in the client's Secret; KeyID the signing key's kid (private_key_jwt).
	Key, KeyID string
}

func providerClientOf(p oauthv1alpha1.OAuthProvider, st oauthv1alpha1.OAuthClientStatus, cs *oauthv1alpha1.OAuthClientSecretReference, pk *oauthv1alpha1.PrivateKeySecretReference) *ProviderClient {
	pc := &ProviderClient{ClientID: p.ClientID, Method: p.AuthMethod()}
	if st.Endpoints != nil {
		pc.Endpoints = *st.Endpoints
	}
	switch {
	case pc.Method == oauthv1alpha1.AuthPrivateKeyJWT && pk != nil:
		pc.Key, pc.KeyID = orDefault(pk.Key, oauthv1alpha1.DefaultPrivateKeyKey), pk.KeyID
	case pc.Method != oauthv1alpha1.AuthNone && cs != nil:
		pc.Key = orDefault(cs.Key, oauthv1alpha1.ClientSecretKey)
	}
	return pc
}

// providerSecretName is the Secret a namespaced provider client's auth method reads ("" for none).
func providerSecretName(p oauthv1alpha1.OAuthProvider, cs *oauthv1alpha1.OAuthClientSecretReference, pk *oauthv1alpha1.PrivateKeySecretReference) string {
	switch m := p.AuthMethod(); {
	case m == oauthv1alpha1.AuthPrivateKeyJWT && pk != nil:
		return pk.Name
	case m != oauthv1alpha1.AuthNone && m != oauthv1alpha1.AuthPrivateKeyJWT && cs != nil:
		return cs.Name
	}
	return ""
}

func (p *ProviderClient) field() string {
	if p.Method == oauthv1alpha1.AuthPrivateKeyJWT {
		return "spec.privateKeySecretRef"
	}
	return "spec.clientSecretRef"
}

// ProviderRequest is what a provider grant's token request needs beyond the client.
type ProviderRequest struct {
	Client    oauthtoken.Client
	Endpoints oauthv1alpha1.OAuthEndpointsStatus
	Params    oauthtoken.Params
	// ClientCredentials: the client credentials grant (no refresh token).
	ClientCredentials bool
}

// readProviderClient fills c with the provider client of co: its secret or signing key
// from the record or the client's Secret (none for a public client), and the request.
func (r *Reader) readProviderClient(ctx context.Context, co *ClientObject, params oauthtoken.Params, clientCredentials bool, c *Credential) (*credentials.Problem, error) {
	pc := co.Provider
	if pc.Endpoints.TokenURL == "" {
		// Decide waits for a Ready client; this is a guard.
		return &credentials.Problem{Reason: oauthv1alpha1.ReasonClientNotReady, Message: fmt.Sprintf("%s %q has no token endpoint in use yet", co.Kind, co.Obj.GetName())}, nil
	}
	req := &ProviderRequest{Client: oauthtoken.Client{ID: pc.ClientID, Method: pc.Method}, Endpoints: pc.Endpoints, Params: params, ClientCredentials: clientCredentials}
	c.Client = credentials.Client{ID: pc.ClientID}
	c.Provider = req
	if pc.Method == oauthv1alpha1.AuthNone {
		return nil, nil
	}
	if co.Secret.Name == "" || co.Secret.Namespace == "" {
		return &credentials.Problem{Reason: oauthv1alpha1.ReasonClientNotReady, Message: fmt.Sprintf("the client object %s %q names no usable Secret", co.Kind, co.Obj.GetName())}, nil
	}
	// The record keeps the key's value as the client's Secret (a client secret, or a
	// signing key's PEM), by the Secret's version.
	cl, s, recorded, err := r.client(ctx, co.Secret, func(m *metav1.ObjectMeta) { c.clientVersion = m })
	if err != nil {
		return nil, err
	}
	if !recorded {
		if s == nil {
			return SecretNotFound(co.Secret, co.Field(), "client"), nil
		}
		v := strings.TrimSpace(string(s.Data[pc.Key]))
		if v == "" {
			return &credentials.Problem{Reason: oauthv1alpha1.ReasonSecretKeyMissing, Message: fmt.Sprintf("Secret %q in namespace %q has no key %q, or it is empty (%s)", co.Secret.Name, co.Secret.Namespace, pc.Key, co.Field())}, nil
		}
		cl = credentials.Client{ID: pc.ClientID, Secret: v}
		r.clients.put(s, cl)
	}
	c.Client = credentials.Client{ID: pc.ClientID, Secret: cl.Secret}
	if pc.Method == oauthv1alpha1.AuthPrivateKeyJWT {
		key, err := oauthtoken.ParsePrivateKey([]byte(cl.Secret), pc.KeyID)
		if err != nil {
			return &credentials.Problem{Reason: oauthv1alpha1.ReasonInvalidPrivateKey, Message: fmt.Sprintf("key %q of Secret %q in namespace %q cannot sign client assertions: %v", pc.Key, co.Secret.Name, co.Secret.Namespace, err)}, nil
		}
		req.Client.Key = key
		return nil, nil
	}
	req.Client.Secret = cl.Secret
	return nil, nil
}

// ReadProviderClientLive is a provider client object's client and endpoints, its Secret read
// from the API server (kubectl grantkeeper revoke, which has no records).
func ReadProviderClientLive(ctx context.Context, live client.Reader, co *ClientObject) (*ProviderRequest, *credentials.Problem, error) {
	if co.Provider == nil {
		return nil, nil, fmt.Errorf("%s %q is not a provider client", co.Kind, co.Obj.GetName())
	}
	r := &Reader{Meta: func(context.Context, string, string) (*metav1.ObjectMeta, error) { return nil, nil }, Live: live}
	c := &Credential{versions: map[string]*metav1.ObjectMeta{}}
	p, err := r.readProviderClient(ctx, co, oauthtoken.Params{}, false, c)
	return c.Provider, p, err
}
