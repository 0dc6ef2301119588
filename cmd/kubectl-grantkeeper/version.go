package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/grantkeeper/grantkeeper/internal/version"
)

// managerSelector finds the manager's Pods, as config/manager and the chart label them.
var managerSelector = client.MatchingLabels{"app.kubernetes.io/name": "grantkeeper", "control-plane": "controller-manager"}

// newVersionCommand: the plugin's version, then the version of each manager running in the
// cluster, read from the image tag of its Pods' "manager" container (a release's images
// are tagged with the release's version: `make release`). Listing Pods is all it needs,
// so it works for anyone who may read the manager's namespace, and reports what runs,
// not what a Deployment asks for while a rollout is under way.
func newVersionCommand(k *kube, streams genericiooptions.IOStreams) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version and the running manager's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(streams.Out, "Plugin:  %s\n", version.Line("kubectl-grantkeeper"))
			if clientOnly {
				return nil
			}
			c, _, err := k.client()
			if err != nil {
				return err
			}
			// All namespaces unless -n says where the manager is.
			var opts []client.ListOption
			if k.flags.Namespace != nil && *k.flags.Namespace != "" {
				opts = append(opts, client.InNamespace(*k.flags.Namespace))
			}
			var pods corev1.PodList
			if err := c.List(cmd.Context(), &pods, append(opts, managerSelector)...); err != nil {
				return fmt.Errorf("listing the manager's Pods (label app.kubernetes.io/name=grantkeeper, control-plane=controller-manager): %w", err)
			}
			writeManagerVersions(streams.Out, pods.Items)
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "Print the plugin's version only (no cluster access).")
	return cmd
}

// writeManagerVersions prints one line per namespace and version of the manager's Pods.
func writeManagerVersions(w io.Writer, pods []corev1.Pod) {
	count := map[string]int{} // "namespace\x00version" -> Pods
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Spec.Containers {
			if c.Name == "manager" {
				count[p.Namespace+"\x00"+imageVersion(c.Image)]++
			}
		}
	}
	if len(count) == 0 {
		fmt.Fprintln(w, "Manager: no manager Pods found (pass -n with the namespace grantkeeper is installed in)")
		return
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ns, v, _ := strings.Cut(k, "\x00")
		fmt.Fprintf(w, "Manager: %s in namespace %s (%d Pods)\n", v, ns, count[k])
	}
}

// imageVersion is an image reference's tag (a release's version), or its digest when it
// has no tag; the reference itself when it does not parse.
func imageVersion(image string) string {
	ref, err := name.ParseReference(image)
	if err != nil {
		return image
	}
	switch r := ref.(type) {
	case name.Digest:
		return r.DigestStr()
	case name.Tag:
		return r.TagStr()
	}
	return image
}
