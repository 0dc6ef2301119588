package inject

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var cfg = Config{Image: "registry.example.com/grantkeeper:v1"}

func pod(annotations map[string]string, containers ...corev1.Container) *corev1.Pod {
	if len(containers) == 0 {
		containers = []corev1.Container{{Name: "app", Image: "app:1"}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "reports", Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: containers},
	}
}

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func TestMutate(t *testing.T) {
	analytics := &Grant{SecretName: "analytics-token", Scopes: []string{"https://www.googleapis.com/auth/analytics.readonly", "email"}}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		grant    *Grant
		err      string
		warnings []string // substrings, one per warning, in order
		check    func(t *testing.T, in, out *corev1.Pod)
	}{
		{name: "no annotation: the same Pod", pod: pod(map[string]string{"other": "x"}), grant: analytics,
			check: func(t *testing.T, in, out *corev1.Pod) {
				if out != in {
					t.Error("a Pod without the annotation was copied or changed")
				}
			}},
		{name: "grant found", pod: pod(map[string]string{Annotation: "analytics", ProjectAnnotation: "my-project"},
			corev1.Container{Name: "app"}, corev1.Container{Name: "second"}), grant: analytics,
			check: func(t *testing.T, in, out *corev1.Pod) {
				sc := out.Spec.InitContainers[0]
				if sc.Name != SidecarName || sc.Image != cfg.Image || sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
					t.Errorf("sidecar: %+v", sc)
				}
				wantArgs := []string{"--listen-address=127.0.0.1:8988", "--token-dir=" + MountPath, "--project-id=my-project",
					"--scopes=https://www.googleapis.com/auth/analytics.readonly,email"}
				if !slices.Equal(sc.Args, wantArgs) {
					t.Errorf("args %q, want %q", sc.Args, wantArgs)
				}
				if sc.ReadinessProbe == nil || !slices.Contains(sc.ReadinessProbe.Exec.Command, "--check") {
					t.Errorf("readiness probe %+v", sc.ReadinessProbe)
				}
				v := out.Spec.Volumes[len(out.Spec.Volumes)-1]
				if v.Name != VolumeName || v.Secret == nil || v.Secret.SecretName != "analytics-token" || v.Secret.Optional == nil || !*v.Secret.Optional {
					t.Errorf("volume %+v", v)
				}
				for _, c := range out.Spec.Containers {
					env := envOf(c)
					if env["GCE_METADATA_HOST"] != "127.0.0.1:8988" || env["GCE_METADATA_ROOT"] != "127.0.0.1:8988" ||
						env["GCE_METADATA_IP"] != "127.0.0.1:8988" || env["METADATA_SERVER_DETECTION"] != "assume-present" {
						t.Errorf("container %s env %v", c.Name, env)
					}
				}
				if len(in.Spec.InitContainers) != 0 || len(in.Spec.Volumes) != 0 || len(in.Spec.Containers[0].Env) != 0 {
					t.Error("the input Pod was modified")
				}
			}},
		{name: "grant missing: admitted with a warning", pod: pod(map[string]string{Annotation: "analytics"}), grant: nil,
			warnings: []string{`GoogleOAuthGrant "analytics" not found in namespace "reports"`},
			check: func(t *testing.T, in, out *corev1.Pod) {
				if v := out.Spec.Volumes[0]; v.Secret.SecretName != "analytics-access-token" {
					t.Errorf("default Secret name: %q", v.Secret.SecretName)
				}
				if slices.ContainsFunc(out.Spec.InitContainers[0].Args, func(a string) bool { return strings.HasPrefix(a, "--scopes") || strings.HasPrefix(a, "--project-id") }) {
					t.Errorf("args %q", out.Spec.InitContainers[0].Args)
				}
			}},
		{name: "init containers get the environment, after the sidecar", grant: analytics,
			pod: func() *corev1.Pod {
				p := pod(map[string]string{Annotation: "analytics"})
				p.Spec.InitContainers = []corev1.Container{{Name: "migrate"}}
				return p
			}(),
			check: func(t *testing.T, in, out *corev1.Pod) {
				if names := []string{out.Spec.InitContainers[0].Name, out.Spec.InitContainers[1].Name}; names[0] != SidecarName || names[1] != "migrate" {
					t.Errorf("init containers %v", names)
				}
				if envOf(out.Spec.InitContainers[1])["GCE_METADATA_HOST"] == "" || len(out.Spec.InitContainers[0].Env) != 0 {
					t.Error("environment on init containers")
				}
			}},
		{name: "the user's own values are kept, with warnings", grant: analytics,
			pod: pod(map[string]string{Annotation: "analytics"}, corev1.Container{Name: "app", Env: []corev1.EnvVar{
				{Name: "GCE_METADATA_HOST", Value: "10.0.0.1"}, {Name: "GOOGLE_APPLICATION_CREDENTIALS", Value: "/key.json"}}}),
			warnings: []string{`container "app" sets GCE_METADATA_HOST itself`, `container "app" sets GOOGLE_APPLICATION_CREDENTIALS`},
			check: func(t *testing.T, in, out *corev1.Pod) {
				if env := envOf(out.Spec.Containers[0]); env["GCE_METADATA_HOST"] != "10.0.0.1" || env["GCE_METADATA_IP"] != "127.0.0.1:8988" {
					t.Errorf("env %v", env)
				}
			}},
		{name: "hostNetwork: not injected, with a warning", grant: analytics,
			pod: func() *corev1.Pod {
				p := pod(map[string]string{Annotation: "analytics"})
				p.Spec.HostNetwork = true
				return p
			}(),
			warnings: []string{`not injecting the grantkeeper-metadata-server sidecar for grant "analytics": the Pod uses hostNetwork`},
			check: func(t *testing.T, in, out *corev1.Pod) {
				if len(out.Spec.InitContainers) != 0 || len(out.Spec.Volumes) != 0 || len(out.Spec.Containers[0].Env) != 0 {
					t.Errorf("a hostNetwork Pod got the sidecar, volume or environment: %+v", out.Spec)
				}
			}},
		{name: "hostNetwork, grant missing: one warning, not injected", grant: nil,
			pod: func() *corev1.Pod {
				p := pod(map[string]string{Annotation: "analytics"})
				p.Spec.HostNetwork = true
				return p
			}(),
			warnings: []string{"the Pod uses hostNetwork"},
			check: func(t *testing.T, in, out *corev1.Pod) {
				if len(out.Spec.InitContainers) != 0 {
					t.Error("a hostNetwork Pod got the sidecar")
				}
			}},
		{name: "inject-containers: only the named containers get the environment", grant: analytics,
			pod: pod(map[string]string{Annotation: "analytics", ContainersAnnotation: " app "},
				corev1.Container{Name: "app"}, corev1.Container{Name: "log-shipper"}),
			check: func(t *testing.T, in, out *corev1.Pod) {
				if envOf(out.Spec.Containers[0])["GCE_METADATA_HOST"] == "" {
					t.Error("the named container app lacks the environment")
				}
				if len(out.Spec.Containers[1].Env) != 0 {
					t.Errorf("the unnamed container log-shipper got %v", out.Spec.Containers[1].Env)
				}
			}},
		{name: "inject-containers naming no container: refused", grant: analytics,
			pod: pod(map[string]string{Annotation: "analytics", ContainersAnnotation: "ap"}, corev1.Container{Name: "app"}),
			err: `annotation oauth.grantkeeper.dev/inject-containers names "ap", which is not a container of the Pod`},
		{name: "bad grant name: refused", pod: pod(map[string]string{Annotation: "Analytics_1"}), err: `"Analytics_1" is not a GoogleOAuthGrant name`},
		{name: "empty grant name: refused", pod: pod(map[string]string{Annotation: " "}), err: "is not a GoogleOAuthGrant name"},
		{name: "volume name taken: refused", grant: analytics,
			pod: func() *corev1.Pod {
				p := pod(map[string]string{Annotation: "analytics"})
				p.Spec.Volumes = []corev1.Volume{{Name: VolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
				return p
			}(), err: `already has a volume named "grantkeeper-token"`},
		{name: "container name taken: refused", grant: analytics,
			pod: pod(map[string]string{Annotation: "analytics"}, corev1.Container{Name: SidecarName}), err: `already has a container named`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.pod.DeepCopy()
			out, warnings, err := Mutate(tc.pod, tc.grant, cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != len(tc.warnings) {
				t.Fatalf("warnings %q, want %d", warnings, len(tc.warnings))
			}
			for i, w := range tc.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %q does not say %q", warnings[i], w)
				}
			}
			if !reflect.DeepEqual(in, tc.pod) {
				t.Error("Mutate modified its input")
			}
			tc.check(t, tc.pod, out)
		})
	}
}

// The webhook may be called again on its own output (reinvocationPolicy, retries): nothing
// is added twice.
func TestMutateIsIdempotent(t *testing.T) {
	p := pod(map[string]string{Annotation: "analytics"})
	once, _, err := Mutate(p, &Grant{SecretName: "analytics-access-token"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	twice, warnings, err := Mutate(once, &Grant{SecretName: "analytics-access-token"}, cfg)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("second pass: %v %q", err, warnings)
	}
	if !reflect.DeepEqual(once, twice) {
		t.Error("a second pass changed the Pod")
	}
}

func TestMutateNeedsAnImage(t *testing.T) {
	if _, _, err := Mutate(pod(map[string]string{Annotation: "a"}), nil, Config{}); err == nil {
		t.Error("no error without an image")
	}
}
