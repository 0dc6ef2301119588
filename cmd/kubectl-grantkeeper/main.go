// Command kubectl-grantkeeper is the grantkeeper kubectl plugin (`kubectl grantkeeper ...`):
// it obtains a refresh token with Google's consent flow and stores it with a
// GoogleOAuthGrant, shows grants' status, requests refreshes and revokes grants.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/version"
)

// exitError carries an exit code without an error message (status's "not all Ready").
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	cmd := newRootCommand(streams)
	if err := cmd.Execute(); err != nil {
		if e, ok := err.(exitError); ok {
			os.Exit(e.code)
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// kube holds what every subcommand needs from the kubeconfig.
type kube struct {
	flags *genericclioptions.ConfigFlags
}

func (k *kube) client() (client.Client, string, error) {
	cfg, err := k.flags.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	ns, _, err := k.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(oauthv1alpha1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	return c, ns, err
}

func newRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	k := &kube{flags: genericclioptions.NewConfigFlags(true)}
	root := &cobra.Command{
		Use:           "kubectl-grantkeeper",
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl grantkeeper"},
		Short:         "Obtain, inspect, refresh and revoke Google OAuth grants kept by grantkeeper",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Version,
	}
	// --version prints what `version --client` does.
	root.SetVersionTemplate(version.Line("kubectl-grantkeeper") + "\n")
	root.CompletionOptions.DisableDefaultCmd = true
	k.flags.AddFlags(root.PersistentFlags())
	root.AddCommand(newAuthorizeCommand(k, streams), newStatusCommand(k, streams), newRefreshCommand(k, streams), newRevokeCommand(k, streams))
	root.AddCommand(newConsentLinkCommand(k, streams))
	root.AddCommand(newRiscCommand(streams))
	root.AddCommand(newVersionCommand(k, streams))
	return root
}
