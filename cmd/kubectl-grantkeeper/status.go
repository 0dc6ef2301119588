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
			var grants []oauthv1alpha1.GoogleOAuthGrant
			if len(args) == 1 {
				g := oauthv1alpha1.GoogleOAuthGrant{}
				if err := c.Get(cmd.Context(), types.NamespacedName{Namespace: ns, Name: args[0]}, &g); err != nil {
					return err
				}
				grants = append(grants, g)
			} else {
				var list oauthv1alpha1.GoogleOAuthGrantList
				opts := []client.ListOption{}
				if !all {
					opts = append(opts, client.InNamespace(ns))
				}
				if err := c.List(cmd.Context(), &list, opts...); err != nil {
					return err
				}
				grants = list.Items
			}
			return printStatus(streams, grants, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "List grants in all namespaces.")
	return cmd
}

func printStatus(streams genericiooptions.IOStreams, grants []oauthv1alpha1.GoogleOAuthGrant, withNS bool) error {
	if len(grants) == 0 {
		fmt.Fprintln(streams.ErrOut, "No GoogleOAuthGrants found.")
		return exitError{1}
	}
	w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	if withNS {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	fmt.Fprintln(w, "NAME\tREADY\tREASON\tEXPIRES\tNEXT REFRESH\tSCOPES\tLAST ERROR")
	allReady := true
	for _, g := range grants {
		ready := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady)
		status, reason, lastErr := "Unknown", "", ""
		if ready != nil {
			status, reason = string(ready.Status), ready.Reason
			if ready.Status != metav1.ConditionTrue || g.Status.FailedRefreshAttempts > 0 {
				lastErr = ready.Message
			}
		}
		if status != "True" {
			allReady = false
		}
		if withNS {
			fmt.Fprintf(w, "%s\t", g.Namespace)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Name, status, reason, when(g.Status.ExpiresAt), when(g.Status.RefreshTime),
			shortScopes(g.Status.GrantedScopes), lastErr)
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
		Use:   "refresh NAME",
		Short: "Request a refresh now (the oauth.grantkeeper.dev/refresh-requested-at annotation); --wait waits for the outcome",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := k.client()
			if err != nil {
				return err
			}
			key := types.NamespacedName{Namespace: ns, Name: args[0]}
			req, err := requestRefresh(cmd.Context(), c, key)
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "googleoauthgrant.oauth.grantkeeper.dev/%s refresh requested at %s\n", key.Name, req)
			if !waitFor {
				return nil
			}
			var g oauthv1alpha1.GoogleOAuthGrant
			err = wait.PollUntilContextTimeout(cmd.Context(), 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
				if err := c.Get(ctx, key, &g); err != nil {
					return false, err
				}
				return g.Status.LastHandledRefreshRequest == req, nil
			})
			if err != nil {
				return fmt.Errorf("the controller did not handle the request within %s (is grantkeeper running?): %w", timeout, err)
			}
			ready := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionTrue || g.Status.FailedRefreshAttempts > 0 {
				msg := "no Ready condition"
				if ready != nil {
					msg = ready.Reason + ": " + ready.Message
				}
				return fmt.Errorf("refresh failed: %s", msg)
			}
			fmt.Fprintf(streams.Out, "refreshed: token valid until %s\n", g.Status.ExpiresAt.UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().BoolVar(&waitFor, "wait", false, "Wait until the controller has handled the request and report the outcome.")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "How long --wait waits.")
	return cmd
}

// requestRefresh sets the manual-refresh annotation to now and returns its value.
func requestRefresh(ctx context.Context, c client.Client, key types.NamespacedName) (string, error) {
	g := &oauthv1alpha1.GoogleOAuthGrant{}
	if err := c.Get(ctx, key, g); err != nil {
		return "", err
	}
	// Nanoseconds keep two requests in the same second distinct (still RFC 3339).
	v := time.Now().UTC().Format(time.RFC3339Nano)
	patch := client.MergeFrom(g.DeepCopy())
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	g.Annotations[oauthv1alpha1.RefreshRequestedAtAnnotation] = v
	return v, c.Patch(ctx, g, patch)
}

func newRevokeCommand(k *kube, streams genericiooptions.IOStreams) *cobra.Command {
	var yes bool
	var revokeURL string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke the grant's refresh token at Google and show the grant turning Revoked",
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
			key := types.NamespacedName{Namespace: ns, Name: args[0]}
			g := &oauthv1alpha1.GoogleOAuthGrant{}
			if err := c.Get(ctx, key, g); err != nil {
				return err
			}
			if g.UsesServiceAccount() {
				return fmt.Errorf("grant %s/%s uses a service-account key: there is no refresh token to revoke; delete or disable the key in the Google Cloud console (IAM & Admin > Service Accounts > Keys)", ns, key.Name)
			}
			if !yes {
				fmt.Fprintf(streams.Out, "Revoke the refresh token of %s/%s at Google? Apps using it stop working until a new consent. [y/N] ", ns, key.Name)
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
			ep := &tokenclient.Endpoint{RevokeURL: revokeURL, HTTP: tokenclient.NewHTTPClient(30 * time.Second)}
			if err := ep.Revoke(ctx, rt); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "Revoked the refresh token at Google.\n")
			// Make the controller notice now rather than at the next scheduled refresh.
			if _, err := requestRefresh(ctx, c, key); err != nil {
				return err
			}
			err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
				if err := c.Get(ctx, key, g); err != nil {
					return false, err
				}
				return meta.IsStatusConditionTrue(g.Status.Conditions, oauthv1alpha1.ConditionRevoked), nil
			})
			if err != nil {
				return fmt.Errorf("the grant did not turn Revoked within %s (is grantkeeper running? Google may take a moment to apply a revocation)", timeout)
			}
			cond := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionRevoked)
			fmt.Fprintf(streams.Out, "googleoauthgrant.oauth.grantkeeper.dev/%s Revoked=True: %s\n", key.Name, cond.Message)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "Do not ask for confirmation.")
	cmd.Flags().StringVar(&revokeURL, "revoke-url", googleapi.RevokeURL, "Revocation endpoint.")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "How long to wait for the grant to turn Revoked.")
	return cmd
}
