// Package inject is the mutating admission webhook that gives a Pod annotated
// oauth.grantkeeper.dev/inject: <grant> the metadata-server sidecar, the grant's derived
// Secret as a volume, and the environment that points Google's client libraries at the
// sidecar. Mutate is the decision, pure; Handler does the one lookup (the grant) and speaks
// the admission protocol.
package inject

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// Annotations on a Pod (a contract).
const (
	// Annotation names the grant, in the Pod's namespace, whose token the Pod gets.
	Annotation = "oauth.grantkeeper.dev/inject"
	// ProjectAnnotation is served as project/project-id.
	ProjectAnnotation = "oauth.grantkeeper.dev/inject-project-id"
	// ContainersAnnotation, a comma-separated list of container names, limits the
	// environment that points Google's libraries at the sidecar to those containers (default:
	// every container), so third-party sidecars in the Pod do not act as the user.
	ContainersAnnotation = "oauth.grantkeeper.dev/inject-containers"
)

// Names of what is added (fixed, so a second pass recognises its own work).
const (
	SidecarName = "grantkeeper-metadata-server"
	VolumeName  = "grantkeeper-token"
	MountPath   = "/var/run/secrets/grantkeeper"
	// ListenAddress is the sidecar's, and what the environment points at.
	ListenAddress = "127.0.0.1:8988"
)

// Config is what the manager knows about the sidecar it injects.
type Config struct {
	Image   string
	Command []string // the metadata-server binary in Image; default /metadata-server
}

// Grant is what Mutate needs to know about the named grant; nil when it does not exist.
type Grant struct {
	SecretName string   // the derived Secret (spec.accessTokenSecretName or <name>-access-token)
	Scopes     []string // spec.scopes: the sidecar refuses token requests for others
}

// GrantFrom extracts what Mutate needs from a grant.
func GrantFrom(g *oauthv1alpha1.GoogleOAuthGrant) *Grant {
	if g == nil {
		return nil
	}
	return &Grant{SecretName: g.TargetSecretName(), Scopes: g.Spec.Scopes}
}

// Env is the environment every container gets (see the README's per-language notes).
func Env() []corev1.EnvVar {
	return []corev1.EnvVar{
		{Name: "GCE_METADATA_HOST", Value: ListenAddress},            // Go, Java, recent Python
		{Name: "GCE_METADATA_ROOT", Value: ListenAddress},            // old Python, gcloud
		{Name: "GCE_METADATA_IP", Value: ListenAddress},              // Python's probe, Node (first)
		{Name: "METADATA_SERVER_DETECTION", Value: "assume-present"}, // Node: no probe
	}
}

// Wants reports whether the Pod asks for injection at all.
func Wants(pod *corev1.Pod) (grant string, ok bool) {
	grant, ok = pod.Annotations[Annotation]
	return strings.TrimSpace(grant), ok
}

// Mutate returns the Pod with the sidecar, volume and environment added, and warnings for
// the user. pod is not modified. grant is nil when the named grant does not exist: the Pod
// is still admitted (the grant may be created next), with a warning, and the sidecar
// reports not-ready until the Secret appears. An error means the Pod must be refused: the
// annotation can never work as written.
func Mutate(pod *corev1.Pod, grant *Grant, cfg Config) (*corev1.Pod, []string, error) {
	name, ok := Wants(pod)
	if !ok {
		return pod, nil, nil
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return nil, nil, fmt.Errorf("annotation %s: %q is not a GoogleOAuthGrant name: %s", Annotation, name, strings.Join(errs, "; "))
	}
	if cfg.Image == "" {
		return nil, nil, fmt.Errorf("the webhook has no metadata-server image configured")
	}
	if pod.Spec.HostNetwork {
		// The sidecar would listen on the node's loopback: any process on the node, and any
		// other hostNetwork Pod, could ask it for the grant's tokens.
		return pod, []string{fmt.Sprintf("not injecting the %s sidecar for grant %q: the Pod uses hostNetwork, where the sidecar's %s is the node's loopback and any process on the node could get the grant's tokens; run the Pod without hostNetwork, or read the grant's Secret instead",
			SidecarName, name, ListenAddress)}, nil
	}
	only, err := containerList(pod)
	if err != nil {
		return nil, nil, err
	}
	out := pod.DeepCopy()
	var warnings []string

	secretName := name + "-access-token"
	var scopes []string
	if grant == nil {
		warnings = append(warnings, fmt.Sprintf("GoogleOAuthGrant %q not found in namespace %q: the Pod is admitted, and its %s sidecar reports not-ready (token requests get 503) until the grant exists and its Secret %q is written",
			name, pod.Namespace, SidecarName, secretName))
	} else {
		secretName, scopes = grant.SecretName, grant.Scopes
	}

	// The volume: optional, so the Pod starts before the Secret exists; the kubelet fills it in
	// when it appears and keeps it updated.
	if i := slices.IndexFunc(out.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == VolumeName }); i >= 0 {
		v := out.Spec.Volumes[i]
		if v.Secret == nil || v.Secret.SecretName != secretName {
			return nil, nil, fmt.Errorf("the Pod already has a volume named %q that is not grant %q's Secret %q: rename that volume", VolumeName, name, secretName)
		}
	} else {
		out.Spec.Volumes = append(out.Spec.Volumes, corev1.Volume{Name: VolumeName, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: secretName, Optional: ptr.To(true)},
		}})
	}

	// The sidecar: first among the init containers, so it runs before the others and the
	// app containers, and (restartPolicy Always) until they end.
	if !slices.ContainsFunc(out.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == SidecarName }) {
		if slices.ContainsFunc(out.Spec.Containers, func(c corev1.Container) bool { return c.Name == SidecarName }) {
			return nil, nil, fmt.Errorf("the Pod already has a container named %q: rename it", SidecarName)
		}
		out.Spec.InitContainers = append([]corev1.Container{sidecar(cfg, scopes, pod.Annotations[ProjectAnnotation])}, out.Spec.InitContainers...)
	}

	// The environment, on every other container. A value the user set is kept.
	for _, list := range []*[]corev1.Container{&out.Spec.InitContainers, &out.Spec.Containers} {
		for i := range *list {
			c := &(*list)[i]
			if c.Name == SidecarName || (only != nil && !slices.Contains(only, c.Name)) {
				continue
			}
			for _, e := range Env() {
				j := slices.IndexFunc(c.Env, func(x corev1.EnvVar) bool { return x.Name == e.Name })
				switch {
				case j < 0:
					c.Env = append(c.Env, e)
				case c.Env[j].Value != e.Value || c.Env[j].ValueFrom != nil:
					warnings = append(warnings, fmt.Sprintf("container %q sets %s itself: kept, so that container may not use the %s sidecar", c.Name, e.Name, SidecarName))
				}
			}
			if slices.ContainsFunc(c.Env, func(x corev1.EnvVar) bool { return x.Name == "GOOGLE_APPLICATION_CREDENTIALS" }) {
				warnings = append(warnings, fmt.Sprintf("container %q sets GOOGLE_APPLICATION_CREDENTIALS: Google's libraries use that file before the metadata server, so it will not use grant %q", c.Name, name))
			}
		}
	}
	return out, warnings, nil
}

// containerList is ContainersAnnotation's names, nil without it; a name that is not a
// container of the Pod is an error (a typo would silently leave the app without tokens).
func containerList(pod *corev1.Pod) ([]string, error) {
	v, ok := pod.Annotations[ContainersAnnotation]
	if !ok {
		return nil, nil
	}
	names := []string{}
	for n := range strings.SplitSeq(v, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		has := func(c corev1.Container) bool { return c.Name == n }
		if !slices.ContainsFunc(pod.Spec.Containers, has) && !slices.ContainsFunc(pod.Spec.InitContainers, has) {
			return nil, fmt.Errorf("annotation %s names %q, which is not a container of the Pod", ContainersAnnotation, n)
		}
		names = append(names, n)
	}
	return names, nil
}

func sidecar(cfg Config, scopes []string, project string) corev1.Container {
	cmd := cfg.Command
	if len(cmd) == 0 {
		cmd = []string{"/metadata-server"}
	}
	args := []string{"--listen-address=" + ListenAddress, "--token-dir=" + MountPath}
	if project = strings.TrimSpace(project); project != "" {
		args = append(args, "--project-id="+project)
	}
	if len(scopes) > 0 {
		args = append(args, "--scopes="+strings.Join(scopes, ","))
	}
	return corev1.Container{
		Name:          SidecarName,
		Image:         cfg.Image,
		Command:       slices.Clone(cmd),
		Args:          args,
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		VolumeMounts:  []corev1.VolumeMount{{Name: VolumeName, MountPath: MountPath, ReadOnly: true}},
		// The server listens on loopback, which the kubelet's HTTP probes cannot reach; the
		// binary probes itself. Not ready until it serves a token.
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: append(slices.Clone(cmd), "--check", "--listen-address="+ListenAddress)}},
			PeriodSeconds: 5, TimeoutSeconds: 4,
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}
