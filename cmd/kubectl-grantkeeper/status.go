package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/googleapi"
	"github.com/grantkeeper/grantkeeper/internal/grantinputs"
	"github.com/grantkeeper/grantkeeper/internal/oauthtoken"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
)

func newStatusCommand(k *kube, streams genericiooptions.IOStreams) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show grants: readiness, reason, expiry, next refresh, granted scopes, last error. Exits 1 unless all are Ready",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := k.client()
			if err != nil {
				return err
			}
			var grants []oauthv1alpha1.Grant
			if len(args) == 1 {
				ref, err := parseGrantRef(args[0])
				if err != nil {
					return err
				}
				g, err := getGrant(cmd.Context(), c, ns, ref)
				if err != nil {
					return err
				}
				grants = append(grants, g)
			} else {
				opts := []client.ListOption{}
				if !all {
					opts = append(opts, client.InNamespace(ns))
				}
				var list oauthv1alpha1.GoogleOAuthGrantList
				if err := c.List(cmd.Context(), &list, opts...); err != nil {
					return err
				}
				for i := range list.Items {
					grants = append(grants, &list.Items[i])
				}
				var others oauthv1alpha1.OAuthGrantList
				if err := c.List(cmd.Context(), &others, opts...); err != nil && !meta.IsNoMatchError(err) {
					return err
				}
				for i := range others.Items {
					grants = append(grants, &others.Items[i])
				}
			}
			return printStatus(streams, grants, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "List grants in all namespaces.")
	return cmd
}

// printStatus prints one line per grant; an OAuthGrant's NAME is oauthgrant/NAME.
func printStatus(streams genericiooptions.IOStreams, grants []oauthv1alpha1.Grant, withNS bool) error {
	if len(grants) == 0 {
		fmt.Fprintln(streams.ErrOut, "No GoogleOAuthGrants or OAuthGrants found.")
		return exitError{1}
	}
	w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	if withNS {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	fmt.Fprintln(w, "NAME\tREADY\tREASON\tEXPIRES\tNEXT REFRESH\tSCOPES\tLAST ERROR")
	allReady := true
	for _, g := range grants {
		st := g.GrantStatus()
		ready := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady)
		status, reason, lastErr := "Unknown", "", ""
		if ready != nil {
			status, reason = string(ready.Status), ready.Reason
			if ready.Status != metav1.ConditionTrue || st.FailedRefreshAttempts > 0 {
				lastErr = ready.Message
			}
		}
		if status != "True" {
			allReady = false
		}
		if withNS {
			fmt.Fprintf(w, "%s\t", g.GetNamespace())
		}
		name := g.GetName()
		if g.GrantKind() == oauthv1alpha1.KindOAuthGrant {
			name = "oauthgrant/" + name
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, status, reason, when(st.ExpiresAt), when(st.RefreshTime),
			shortScopes(st.GrantedScopes), lastErr)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if !allReady {
		return exitError{1}
	}
	return nil
}

func when(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	d := time.Until(t.Time).Round(time.Second)
	if d < 0 {
		return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), -d)
	}
	return fmt.Sprintf("%s (in %s)", t.UTC().Format(time.RFC3339), d)
}

func shortScopes(scopes []string) string {
	if len(scopes) == 0 {
		return "-"
	}
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = strings.TrimPrefix(s, "https://www.googleapis.com/auth/")
	}
	return strings.Join(out, ",")
}

func newRefreshCommand(k *kube, streams genericiooptions.IOStreams) *cobra.Command {
	var waitFor bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "refresh NAME|KIND/NAME",
		Short: "Request a refresh now (the oauth.grantkeeper.dev/refresh-requested-at annotation); --wait waits for the outcome",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := k.client()
			if err != nil {
				return err
			}
			ref, err := parseGrantRef(args[0])
			if err != nil {
				return err
			}
			g, err := getGrant(cmd.Context(), c, ns, ref)
			if err != nil {
				return err
			}
			key := types.NamespacedName{Namespace: ns, Name: g.GetName()}
			req, err := requestRefresh(cmd.Context(), c, g)
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "%s refresh requested at %s\n", resourceName(g), req)
			if !waitFor {
				return nil
			}
			err = wait.PollUntilContextTimeout(cmd.Context(), 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
				if err := c.Get(ctx, key, g); err != nil {
					return false, err
				}
				return g.GrantStatus().LastHandledRefreshRequest == req, nil
			})
			if err != nil {
				return fmt.Errorf("the controller did not handle the request within %s (is grantkeeper running?): %w", timeout, err)
			}
			st := g.GrantStatus()
			ready := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionTrue || st.FailedRefreshAttempts > 0 {
				msg := "no Ready condition"
				if ready != nil {
					msg = ready.Reason + ": " + ready.Message
				}
				return fmt.Errorf("refresh failed: %s", msg)
			}
			fmt.Fprintf(streams.Out, "refreshed: token valid until %s\n", st.ExpiresAt.UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().BoolVar(&waitFor, "wait", false, "Wait until the controller has handled the request and report the outcome.")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "How long --wait waits.")
	return cmd
}

// requestRefresh sets the grant's manual-refresh annotation to now and returns its value.
func requestRefresh(ctx context.Context, c client.Client, g oauthv1alpha1.Grant) (string, error) {
	// Nanoseconds keep two requests in the same second distinct (still RFC 3339).
	v := time.Now().UTC().Format(time.RFC3339Nano)
	patch := client.MergeFrom(g.DeepCopyObject().(client.Object))
	a := g.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[oauthv1alpha1.RefreshRequestedAtAnnotation] = v
	g.SetAnnotations(a)
	return v, c.Patch(ctx, g, patch)
}

func newRevokeCommand(k *kube, streams genericiooptions.IOStreams) *cobra.Command {
	var yes bool
	var revokeURL string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "revoke NAME|KIND/NAME",
		Short: "Revoke the grant's refresh token at Google (or an OAuthGrant's provider, RFC 7009) and show the grant turning Revoked",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := tokenclient.ValidateURL(revokeURL); err != nil {
				return err
			}
			c, ns, err := k.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ref, err := parseGrantRef(args[0])
			if err != nil {
				return err
			}
			g, err := getGrant(ctx, c, ns, ref)
			if err != nil {
				return err
			}
			key := types.NamespacedName{Namespace: ns, Name: g.GetName()}
			where := "Google"
			var revoke func(rt string) error
			switch gg := g.(type) {
			case *oauthv1alpha1.GoogleOAuthGrant:
				if gg.UsesServiceAccount() {
					return fmt.Errorf("grant %s/%s uses a service-account key: there is no refresh token to revoke; delete or disable the key in the Google Cloud console (IAM & Admin > Service Accounts > Keys)", ns, key.Name)
				}
				revoke = func(rt string) error {
					return (&tokenclient.Endpoint{RevokeURL: revokeURL, HTTP: tokenclient.NewHTTPClient(30 * time.Second)}).Revoke(ctx, rt)
				}
			case *oauthv1alpha1.OAuthGrant:
				where = "the provider"
				if gg.Type() == oauthv1alpha1.GrantTypeClientCredentials {
					return fmt.Errorf("grant %s/%s uses the client credentials grant: there is no refresh token to revoke", ns, key.Name)
				}
				if revoke, err = providerRevoker(ctx, c, gg); err != nil {
					return err
				}
			}
			if !yes {
				fmt.Fprintf(streams.Out, "Revoke the refresh token of %s/%s at %s? Apps using it stop working until a new consent. [y/N] ", ns, key.Name, where)
				answer, _ := bufio.NewReader(streams.In).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return fmt.Errorf("not revoked")
				}
			}
			live, err := grantinputs.ReadLive(ctx, c, g)
			switch {
			case err != nil:
				return fmt.Errorf("reading the refresh token: %w", err)
			case !live.Found:
				return fmt.Errorf("reading the refresh token: Secret %q not found", live.Secret)
			}
			rt := live.RefreshToken
			if rt == "" {
				return fmt.Errorf("Secret %q holds no refresh token under key %q", live.Secret, g.RefreshTokenKey())
			}
			if err := revoke(rt); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "Revoked the refresh token at %s.\n", where)
			// Make the controller notice now rather than at the next scheduled refresh.
			if _, err := requestRefresh(ctx, c, g); err != nil {
				return err
			}
			err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
				if err := c.Get(ctx, key, g); err != nil {
					return false, err
				}
				return meta.IsStatusConditionTrue(g.GrantStatus().Conditions, oauthv1alpha1.ConditionRevoked), nil
			})
			if err != nil {
				return fmt.Errorf("the grant did not turn Revoked within %s (is grantkeeper running? %s may take a moment to apply a revocation)", timeout, where)
			}
			cond := meta.FindStatusCondition(g.GrantStatus().Conditions, oauthv1alpha1.ConditionRevoked)
			fmt.Fprintf(streams.Out, "%s Revoked=True: %s\n", resourceName(g), cond.Message)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "Do not ask for confirmation.")
	cmd.Flags().StringVar(&revokeURL, "revoke-url", googleapi.RevokeURL, "Google's revocation endpoint (an OAuthGrant uses its client object's).")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "How long to wait for the grant to turn Revoked.")
	return cmd
}

// providerRevoker revokes a refresh token at an OAuthGrant's provider (RFC 7009), as its
// client object authenticates; an error when the provider has no revocation endpoint.
func providerRevoker(ctx context.Context, c client.Client, g *oauthv1alpha1.OAuthGrant) (func(string) error, error) {
	co, err := grantinputs.GetClient(ctx, c, g.ClientRefKind(), types.NamespacedName{Namespace: g.Namespace, Name: g.Spec.ClientRef.Name}, "")
	if err != nil {
		return nil, err
	}
	if co == nil {
		return nil, fmt.Errorf("%s %q (spec.clientRef) not found", g.ClientRefKind(), g.Spec.ClientRef.Name)
	}
	req, problem, err := grantinputs.ReadProviderClientLive(ctx, c, co)
	switch {
	case err != nil:
		return nil, err
	case problem != nil:
		return nil, fmt.Errorf("%s: %s", problem.Reason, problem.Message)
	case req.Endpoints.RevocationURL == "":
		return nil, fmt.Errorf("%s %q has no revocation endpoint in use (status.endpoints.revocationURL): revoke the token at the provider", co.Kind, co.Obj.GetName())
	}
	e := &oauthtoken.Endpoint{TokenURL: req.Endpoints.TokenURL, RevocationURL: req.Endpoints.RevocationURL, HTTP: tokenclient.NewHTTPClient(30 * time.Second)}
	return func(rt string) error { return e.Revoke(ctx, req.Client, rt, "refresh_token", time.Now()) }, nil
}
