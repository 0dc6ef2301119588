package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/authflow"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/googleapi"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/internal/writable"
)

type authorizeOptions struct {
	clientFile, scopes, loginHint        string
	secretName, clientSecretName, output string
	dryRun, printFormat, listen          string
	clientObject, clusterClient, mgrNS   string
	authURL, tokenURL                    string
	noBrowser                            bool
	timeout                              time.Duration
}

func newAuthorizeCommand(k *kube, streams genericiooptions.IOStreams) *cobra.Command {
	o := &authorizeOptions{}
	cmd := &cobra.Command{
		Use:   "authorize NAME (--client-secret-file client_secret.json | --client NAME | --cluster-client NAME) --scopes SCOPE[,SCOPE...]",
		Short: "Run Google's consent flow and store the refresh token with a GoogleOAuthGrant",
		Long: `Runs Google's authorization-code flow for installed and web apps (loopback redirect, state,
PKCE S256, access_type=offline, prompt=consent), then creates or updates, in the namespace, the
OAuth client Secret, the refresh-token Secret and the GoogleOAuthGrant NAME. With --client or
--cluster-client the grant names that shared client object in spec.clientRef instead, and no
client Secret is written; the client's Secret is read only if you may read it.

Every consent mints a new refresh token, and Google keeps at most 100 live refresh tokens per
account and client (silently invalidating the oldest), so re-running authorize for an existing
grant replaces its stored token rather than adding another.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), k, streams, args[0]) },
	}
	f := cmd.Flags()
	f.StringVar(&o.clientFile, "client-secret-file", "", "The OAuth client JSON downloaded from the Google Cloud console (a Desktop or Web client).")
	f.StringVar(&o.scopes, "scopes", "", "Comma-separated scopes to request, e.g. https://www.googleapis.com/auth/analytics.readonly.")
	f.StringVar(&o.loginHint, "login-hint", "", "The Google account to pre-select on the consent screen.")
	f.StringVar(&o.secretName, "secret-name", "", "Name of the Secret for the refresh token (default NAME-refresh-token; NAME-credentials with --output adc).")
	f.StringVar(&o.clientSecretName, "client-secret-name", "", "Name of the Secret for the OAuth client (default NAME-oauth-client).")
	f.StringVar(&o.clientObject, "client", "", "Use the GoogleOAuthClient of this name in the namespace (spec.clientRef) instead of --client-secret-file.")
	f.StringVar(&o.clusterClient, "cluster-client", "", "Use the ClusterGoogleOAuthClient of this name (spec.clientRef) instead of --client-secret-file.")
	f.StringVar(&o.mgrNS, "manager-namespace", "grantkeeper-system", "Where a ClusterGoogleOAuthClient's Secret is when its spec.secretRef names no namespace: grantkeeper's namespace.")
	f.StringVarP(&o.output, "output", "o", "secrets", `secrets: store a client Secret and a refresh-token Secret; adc: one Secret in gcloud's authorized_user JSON form; yaml or json: with --dry-run=client, the format to print.`)
	f.StringVar(&o.dryRun, "dry-run", "none", `"client" prints the manifests (YAML) instead of creating them.`)
	f.StringVar(&o.listen, "listen-address", "127.0.0.1:0", "Loopback address for the redirect; fix the port for Web clients, whose redirect URIs must be registered.")
	f.BoolVar(&o.noBrowser, "no-browser", false, "Only print the consent URL; do not open a browser.")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "How long to wait for the browser to come back.")
	f.StringVar(&o.authURL, "auth-url", googleapi.AuthURL, "Authorization endpoint.")
	f.StringVar(&o.tokenURL, "token-url", googleapi.TokenURL, "Token endpoint.")
	cmd.MarkFlagsMutuallyExclusive("client-secret-file", "client", "cluster-client")
	cmd.MarkFlagsOneRequired("client-secret-file", "client", "cluster-client")
	_ = cmd.MarkFlagRequired("scopes")
	return cmd
}

func (o *authorizeOptions) run(ctx context.Context, k *kube, streams genericiooptions.IOStreams, name string) error {
	out := streams.Out
	if o.dryRun != "none" && o.dryRun != "client" {
		return fmt.Errorf("--dry-run must be none or client, not %q", o.dryRun)
	}
	switch o.output {
	case "secrets", "adc":
	case "yaml", "json":
		if o.dryRun != "client" {
			return fmt.Errorf("-o %s prints manifests: use it with --dry-run=client", o.output)
		}
		o.printFormat, o.output = o.output, "secrets"
	default:
		return fmt.Errorf("-o/--output must be secrets, adc, yaml or json, not %q", o.output)
	}
	for _, u := range []string{o.authURL, o.tokenURL} {
		if err := tokenclient.ValidateURL(u); err != nil {
			return err
		}
	}
	scopes := splitScopes(o.scopes)
	if len(scopes) == 0 {
		return fmt.Errorf("--scopes names no scope")
	}
	if o.clientRef() != nil && o.output == "adc" {
		return fmt.Errorf("-o adc stores the client in the grant's own Secret; it does not combine with --client or --cluster-client")
	}
	c, ns, err := k.client()
	if err != nil {
		return err
	}
	var raw []byte
	var cl credentials.Client
	if ref := o.clientRef(); ref != nil {
		if cl, err = o.sharedClient(ctx, c, ns, ref); err != nil {
			return err
		}
	} else {
		if raw, err = os.ReadFile(o.clientFile); err != nil {
			return fmt.Errorf("reading --client-secret-file: %w", err)
		}
		var p *credentials.Problem
		if cl, p = credentials.ParseClient(o.clientFile, map[string][]byte{oauthv1alpha1.ClientSecretJSONKey: raw}); p != nil {
			return p
		}
	}

	tok, err := authflow.Run(ctx, authflow.Options{
		Config: oauth2.Config{ClientID: cl.ID, ClientSecret: cl.Secret, Scopes: withIdentityScopes(scopes),
			Endpoint: oauth2.Endpoint{AuthURL: o.authURL, TokenURL: o.tokenURL, AuthStyle: oauth2.AuthStyleInParams}},
		LoginHint:     o.loginHint,
		ListenAddress: o.listen,
		Timeout:       o.timeout,
		HTTPClient:    tokenclient.NewHTTPClient(30 * time.Second),
		Consent: func(u string) {
			fmt.Fprintf(streams.ErrOut, "Open this URL in a browser and grant access:\n\n%s\n\n", u)
			if !o.noBrowser {
				openBrowser(u)
			}
			fmt.Fprintf(streams.ErrOut, "Waiting up to %s for the browser to come back...\n", o.timeout)
		},
	})
	if err != nil {
		return err
	}

	granted := strings.Fields(fmt.Sprint(tok.Extra("scope")))
	fmt.Fprintf(streams.ErrOut, "Granted scopes: %s\n", strings.Join(granted, " "))
	missing := false
	for _, s := range scopes {
		if !slices.Contains(granted, s) {
			missing = true
			fmt.Fprintf(streams.ErrOut, "WARNING: scope %s was requested but not granted (the user unticked it, or the app may not request it)\n", s)
		}
	}
	if missing {
		// Every refresh asks for spec.scopes (issue 28): Google refuses those not granted.
		fmt.Fprintf(streams.ErrOut, "WARNING: the grant asks Google for all of --scopes at every refresh and is not Ready until a consent grants them all; run this command again, or with only the granted scopes\n")
	}
	if v, ok := tok.Extra("refresh_token_expires_in").(float64); ok && v > 0 {
		fmt.Fprintf(streams.ErrOut, "WARNING: this refresh token expires in %s (time-based access, or an app in Testing status): the grant will turn Revoked then\n", (time.Duration(v) * time.Second).String())
	}

	objs := o.objects(name, ns, raw, cl, tok.RefreshToken, scopes)
	if o.dryRun == "client" {
		return printObjects(out, objs, o.printFormat)
	}
	replaced := false
	for _, obj := range objs {
		existed, err := createOrUpdate(ctx, c, obj)
		if err != nil {
			return err
		}
		kind := "secret"
		if _, ok := obj.(*oauthv1alpha1.GoogleOAuthGrant); ok {
			kind = "googleoauthgrant.oauth.grantkeeper.dev"
		}
		verb := "created"
		if existed {
			verb = "configured"
			if s, ok := obj.(*corev1.Secret); ok && s.Name == o.refreshSecretName(name) {
				replaced = true
			}
		}
		fmt.Fprintf(out, "%s/%s %s\n", kind, obj.GetName(), verb)
	}
	if replaced {
		fmt.Fprintln(streams.ErrOut, "Replaced the stored refresh token. Google keeps at most 100 refresh tokens per account and client and silently invalidates the oldest, so replace rather than add.")
	}
	fmt.Fprintf(streams.ErrOut, "Next: kubectl wait -n %s --for=condition=Ready googleoauthgrant/%s\n", ns, name)
	return nil
}

func (o *authorizeOptions) refreshSecretName(name string) string {
	switch {
	case o.secretName != "":
		return o.secretName
	case o.output == "adc":
		return name + "-credentials"
	default:
		return name + "-refresh-token"
	}
}

// objects are what authorize stores: the client and refresh-token Secrets (or one
// authorized_user Secret) and the grant.
func (o *authorizeOptions) objects(name, ns string, clientJSON []byte, cl credentials.Client, refreshToken string, scopes []string) []client.Object {
	meta := func(n string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: n, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/created-by": "kubectl-grantkeeper"}}
	}
	grant := &oauthv1alpha1.GoogleOAuthGrant{
		TypeMeta:   metav1.TypeMeta{APIVersion: oauthv1alpha1.GroupVersion.String(), Kind: "GoogleOAuthGrant"},
		ObjectMeta: meta(name),
		Spec:       oauthv1alpha1.GoogleOAuthGrantSpec{Scopes: scopes},
	}
	secret := func(n string, data map[string]string) *corev1.Secret {
		return &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: meta(n), Type: corev1.SecretTypeOpaque, StringData: data}
	}
	rtName := o.refreshSecretName(name)
	// The refresh-token Secret lets grantkeeper store this grant's later tokens there (a
	// rotated one, a new consent): it writes only Secrets that allow it.
	secretFor := func(n string, data map[string]string) *corev1.Secret {
		s := secret(n, data)
		s.Annotations = map[string]string{oauthv1alpha1.RefreshTokenForAnnotation: name}
		return s
	}
	if o.output == "adc" {
		adc, _ := json.MarshalIndent(map[string]string{"type": "authorized_user", "client_id": cl.ID, "client_secret": cl.Secret, "refresh_token": refreshToken}, "", "  ")
		grant.Spec.AuthorizedUserSecretRef = &oauthv1alpha1.AuthorizedUserSecretReference{Name: rtName, Key: oauthv1alpha1.DefaultAuthorizedUserKey}
		return []client.Object{secretFor(rtName, map[string]string{oauthv1alpha1.DefaultAuthorizedUserKey: string(adc)}), grant}
	}
	if ref := o.clientRef(); ref != nil {
		grant.Spec.ClientRef = ref
		grant.Spec.RefreshTokenSecretRef = &oauthv1alpha1.RefreshTokenSecretReference{Name: rtName, Key: oauthv1alpha1.DefaultRefreshTokenKey}
		return []client.Object{secretFor(rtName, map[string]string{oauthv1alpha1.DefaultRefreshTokenKey: refreshToken}), grant}
	}
	clientName := o.clientSecretName
	if clientName == "" {
		clientName = name + "-oauth-client"
	}
	grant.Spec.ClientSecretRef = &oauthv1alpha1.ClientSecretReference{Name: clientName}
	grant.Spec.RefreshTokenSecretRef = &oauthv1alpha1.RefreshTokenSecretReference{Name: rtName, Key: oauthv1alpha1.DefaultRefreshTokenKey}
	return []client.Object{
		secret(clientName, map[string]string{oauthv1alpha1.ClientSecretJSONKey: string(clientJSON)}),
		secretFor(rtName, map[string]string{oauthv1alpha1.DefaultRefreshTokenKey: refreshToken}),
		grant,
	}
}

// clientRef is the grant's spec.clientRef from --client or --cluster-client, nil without them.
func (o *authorizeOptions) clientRef() *oauthv1alpha1.ClientReference {
	switch {
	case o.clientObject != "":
		return &oauthv1alpha1.ClientReference{Kind: oauthv1alpha1.KindGoogleOAuthClient, Name: o.clientObject}
	case o.clusterClient != "":
		return &oauthv1alpha1.ClientReference{Kind: oauthv1alpha1.KindClusterGoogleOAuthClient, Name: o.clusterClient}
	}
	return nil
}

// sharedClient reads the OAuth client of a client object from its Secret, if the user may
// read that Secret; else it says so (the consent needs the client secret).
func (o *authorizeOptions) sharedClient(ctx context.Context, c client.Client, ns string, ref *oauthv1alpha1.ClientReference) (credentials.Client, error) {
	var key types.NamespacedName
	what := fmt.Sprintf("%s %q", ref.Kind, ref.Name)
	if ref.Kind == oauthv1alpha1.KindClusterGoogleOAuthClient {
		obj := &oauthv1alpha1.ClusterGoogleOAuthClient{}
		if err := c.Get(ctx, types.NamespacedName{Name: ref.Name}, obj); err != nil {
			return credentials.Client{}, fmt.Errorf("reading %s: %w", what, err)
		}
		key = types.NamespacedName{Namespace: obj.Spec.SecretRef.Namespace, Name: obj.Spec.SecretRef.Name}
		if key.Namespace == "" {
			key.Namespace = o.mgrNS
		}
	} else {
		obj := &oauthv1alpha1.GoogleOAuthClient{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, obj); err != nil {
			return credentials.Client{}, fmt.Errorf("reading %s in namespace %q: %w", what, ns, err)
		}
		key = types.NamespacedName{Namespace: ns, Name: obj.Spec.SecretRef.Name}
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, key, s); err != nil {
		if apierrors.IsForbidden(err) {
			return credentials.Client{}, fmt.Errorf("you may not read Secret %q in namespace %q, which holds the OAuth client of %s: the consent flow needs the client secret. "+
				"Ask whoever manages that client to run the consent for you (consent links that need no access to the Secret are planned), or for read access to the Secret", key.Name, key.Namespace, what)
		}
		return credentials.Client{}, fmt.Errorf("reading the Secret of %s: %w", what, err)
	}
	cl, p := credentials.ParseClient(s.Name, s.Data)
	if p != nil {
		return credentials.Client{}, fmt.Errorf("the Secret of %s: %w", what, p)
	}
	return cl, nil
}

// createOrUpdate creates obj, or replaces the data or spec of the existing object; it
// reports whether the object existed.
func createOrUpdate(ctx context.Context, c client.Client, obj client.Object) (bool, error) {
	var op controllerutil.OperationResult
	// The controller writes the grant's status (and may write back a rotated refresh token)
	// at any moment: read, modify and write again on a conflict.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() (err error) {
		op, err = createOrUpdateOnce(ctx, c, obj)
		return err
	})
	return op != controllerutil.OperationResultCreated, err
}

func createOrUpdateOnce(ctx context.Context, c client.Client, obj client.Object) (op controllerutil.OperationResult, err error) {
	switch want := obj.(type) {
	case *corev1.Secret:
		cur := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
		op, err = controllerutil.CreateOrUpdate(ctx, c, cur, func() error {
			if cur.CreationTimestamp.IsZero() {
				cur.Labels, cur.Type = want.Labels, want.Type
			}
			if v, ok := want.Annotations[oauthv1alpha1.RefreshTokenForAnnotation]; ok {
				// The person running authorize may write this Secret: they allow the grant to.
				metav1.SetMetaDataAnnotation(&cur.ObjectMeta, oauthv1alpha1.RefreshTokenForAnnotation,
					writable.RefreshTokenAnnotation(cur.Annotations[oauthv1alpha1.RefreshTokenForAnnotation], v))
			}
			cur.Data, cur.StringData = nil, want.StringData
			return nil
		})
	case *oauthv1alpha1.GoogleOAuthGrant:
		cur := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
		op, err = controllerutil.CreateOrUpdate(ctx, c, cur, func() error {
			if cur.CreationTimestamp.IsZero() {
				cur.Labels = want.Labels
			}
			cur.Spec.ClientSecretRef, cur.Spec.ClientRef, cur.Spec.RefreshTokenSecretRef, cur.Spec.AuthorizedUserSecretRef = want.Spec.ClientSecretRef, want.Spec.ClientRef, want.Spec.RefreshTokenSecretRef, want.Spec.AuthorizedUserSecretRef
			cur.Spec.Scopes = want.Spec.Scopes
			return nil
		})
	default:
		return op, fmt.Errorf("unexpected object %T", obj)
	}
	return op, err
}

// printObjects prints the manifests as kubectl's -o yaml and -o json do.
func printObjects(out io.Writer, objs []client.Object, format string) error {
	var p printers.ResourcePrinter = &printers.YAMLPrinter{}
	if format == "json" {
		p = &printers.JSONPrinter{}
	}
	for _, obj := range objs {
		if err := p.PrintObj(obj, out); err != nil {
			return err
		}
	}
	return nil
}

func splitScopes(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// openBrowser opens u in the desktop's browser when there is one; failures are ignored
// (the URL is printed anyway).
func openBrowser(u string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return
		}
		cmd = exec.Command("xdg-open", u)
	}
	_ = cmd.Start()
}
