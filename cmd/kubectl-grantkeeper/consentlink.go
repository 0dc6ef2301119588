package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/consent"
	"github.com/grantkeeper/grantkeeper/internal/plan"
	"github.com/grantkeeper/grantkeeper/internal/writable"
)

func newConsentLinkCommand(k *kube, streams genericiooptions.IOStreams) *cobra.Command {
	var waitReady bool
	var linkTimeout, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "consent-link NAME",
		Short: "Print the grant's consent link for the Google account's owner to open; --wait then waits until the grant is Ready",
		Long: `Print the link the owner of the Google account opens in a browser to authorize the grant
(a new grant, a revoked one, or missing scopes: the CONSENT column of kubectl get gog says
Required). The link works once and expires; whoever opens it can attach their Google
account, so send it only to that person (set spec.loginHint to refuse other accounts).
The link is kept in the grant's Secret grantkeeper-consent-NAME: reading it needs get on
Secrets in the namespace. Needs a manager started with --consent-bind-address and
--consent-base-url.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := k.client()
			if err != nil {
				return err
			}
			key := types.NamespacedName{Namespace: ns, Name: args[0]}
			link, g, err := consentLink(cmd.Context(), c, key, linkTimeout)
			if err != nil {
				return err
			}
			if link == "" {
				fmt.Fprintf(streams.ErrOut, "googleoauthgrant.oauth.grantkeeper.dev/%s is Ready and needs no consent (account %s)\n", key.Name, account(g))
				return nil
			}
			fmt.Fprintln(streams.Out, link)
			if !waitReady {
				return nil
			}
			fmt.Fprintf(streams.ErrOut, "waiting up to %s for the grant to turn Ready...\n", timeout)
			err = wait.PollUntilContextTimeout(cmd.Context(), time.Second, timeout, true, func(ctx context.Context) (bool, error) {
				if err := c.Get(ctx, key, g); err != nil {
					return false, err
				}
				return readyWithoutConsent(g), nil
			})
			if err != nil {
				return fmt.Errorf("the grant did not turn Ready within %s: %s", timeout, readyMessage(g))
			}
			fmt.Fprintf(streams.ErrOut, "googleoauthgrant.oauth.grantkeeper.dev/%s is Ready (account %s)\n", key.Name, account(g))
			return nil
		},
	}
	cmd.Flags().BoolVar(&waitReady, "wait", false, "After printing the link, wait until the grant is Ready.")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "How long --wait waits.")
	cmd.Flags().DurationVar(&linkTimeout, "link-timeout", 30*time.Second, "How long to wait for the controller to put a link in the status (a grant just created).")
	return cmd
}

// consentLink waits for the grant's link, or for it to be Ready without one ("").
func consentLink(ctx context.Context, c client.Client, key types.NamespacedName, timeout time.Duration) (string, *oauthv1alpha1.GoogleOAuthGrant, error) {
	g := &oauthv1alpha1.GoogleOAuthGrant{}
	link := ""
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, g); err != nil {
			return false, err
		}
		if g.Status.Consent != oauthv1alpha1.ConsentRequired {
			return readyWithoutConsent(g), nil
		}
		var err error
		link, err = liveLink(ctx, c, g)
		return link != "", err
	})
	switch {
	case err == nil:
		return link, g, nil
	case !wait.Interrupted(err):
		return "", g, err
	case !plan.ConsentEligible(g):
		return "", g, errors.New("this grant cannot use consent links: they need spec.scopes, spec.refreshTokenSecretRef and spec.clientSecretRef or spec.clientRef (use kubectl grantkeeper authorize for the other forms)")
	}
	if c := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionSecretsWritable); c != nil && c.Status == metav1.ConditionFalse {
		return "", g, fmt.Errorf("no consent link after %s: %s", timeout, c.Message)
	}
	return "", g, fmt.Errorf("no consent link after %s (%s): the manager must run with --consent-bind-address and --consent-base-url", timeout, readyMessage(g))
}

// liveLink reads the link the grant offers from its link Secret ("" while there is no live
// one yet). Someone who may read the grant but not Secrets gets an error saying so.
func liveLink(ctx context.Context, c client.Client, g *oauthv1alpha1.GoogleOAuthGrant) (string, error) {
	name := consent.SecretName(g.Name)
	sec := &corev1.Secret{}
	err := c.Get(ctx, types.NamespacedName{Namespace: g.Namespace, Name: name}, sec)
	switch {
	case apierrors.IsNotFound(err):
		return "", nil
	case apierrors.IsForbidden(err):
		return "", fmt.Errorf("grant %s/%s needs consent, but you may not read its consent link: it is kept in Secret %q, which needs get on Secrets in namespace %q (whoever opens the link can attach their Google account to the grant, so only those who may read Secrets there get it); ask someone who may, or run kubectl grantkeeper authorize",
			g.Namespace, g.Name, name, g.Namespace)
	case err != nil:
		return "", err
	}
	if writable.LinkSecret(sec, g.Name) != nil || !metav1.IsControlledBy(sec, g) {
		return "", fmt.Errorf("secret %q is not grant %s/%s's consent-link Secret (no controller reference to it): not printing what it holds", name, g.Namespace, g.Name)
	}
	rec := &consent.Record{}
	if json.Unmarshal(sec.Data[consent.RecordKey], rec) != nil {
		return "", nil
	}
	link := string(sec.Data[consent.URLKey])
	if id := consent.LinkID(link); id == "" || rec.Check(id, string(g.UID), true, time.Now()) != consent.LinkLive {
		// Used, expired or replaced: the controller is minting the next one.
		return "", nil
	}
	return link, nil
}

func readyWithoutConsent(g *oauthv1alpha1.GoogleOAuthGrant) bool {
	return g.Status.Consent == "" && g.Status.ObservedGeneration == g.Generation &&
		meta.IsStatusConditionTrue(g.Status.Conditions, oauthv1alpha1.ConditionReady) &&
		!meta.IsStatusConditionFalse(g.Status.Conditions, oauthv1alpha1.ConditionScopesGranted)
}

func readyMessage(g *oauthv1alpha1.GoogleOAuthGrant) string {
	c := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady)
	if c == nil {
		return "no Ready condition yet"
	}
	if c.Status == metav1.ConditionTrue {
		return "Ready"
	}
	return "Ready=" + string(c.Status) + " " + c.Reason + ": " + c.Message
}

func account(g *oauthv1alpha1.GoogleOAuthGrant) string {
	if g.Status.Account == nil || g.Status.Account.Email == "" {
		return "unknown"
	}
	return g.Status.Account.Email
}
