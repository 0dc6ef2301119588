package main

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func managerPod(ns, image string, deleting bool) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-rbac-proxy", Image: "proxy:v9"}, {Name: "manager", Image: image}}},
	}
	if deleting {
		now := metav1.Now()
		p.DeletionTimestamp = &now
	}
	return p
}

// TestWriteManagerVersions: what `kubectl grantkeeper version` says about the cluster: one
// line per namespace and version (a rollout half done shows both), from the manager
// container's tag or digest, not terminating Pods, and a hint when nothing is found.
func TestWriteManagerVersions(t *testing.T) {
	for _, tc := range []struct {
		name string
		pods []corev1.Pod
		want string
	}{
		{"none", nil, "Manager: no manager Pods found (pass -n with the namespace grantkeeper is installed in)\n"},
		{"one version", []corev1.Pod{managerPod("gk", "ghcr.io/grantkeeper/grantkeeper:v0.2.0", false), managerPod("gk", "ghcr.io/grantkeeper/grantkeeper:v0.2.0", false)},
			"Manager: v0.2.0 in namespace gk (2 Pods)\n"},
		{"rollout", []corev1.Pod{managerPod("gk", "ghcr.io/grantkeeper/grantkeeper:v0.2.0", false), managerPod("gk", "registry.example.com:5000/grantkeeper:v0.1.0", false), managerPod("gk", "ghcr.io/grantkeeper/grantkeeper:v0.0.9", true)},
			"Manager: v0.1.0 in namespace gk (1 Pods)\nManager: v0.2.0 in namespace gk (1 Pods)\n"},
		{"digest", []corev1.Pod{managerPod("a", "ghcr.io/grantkeeper/grantkeeper@sha256:"+strings.Repeat("ab", 32), false)},
			"Manager: sha256:" + strings.Repeat("ab", 32) + " in namespace a (1 Pods)\n"},
		{"untagged", []corev1.Pod{managerPod("a", "grantkeeper", false)}, "Manager: latest in namespace a (1 Pods)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			writeManagerVersions(&b, tc.pods)
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
}
