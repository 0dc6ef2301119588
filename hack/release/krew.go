package main

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// The krew plugin manifest (krew's index.Plugin, apiVersion krew.googlecontainertools.github.com/v1alpha2),
// written with the fields krew reads; test/release validates it with krew's own
// validate-krew-manifest and installs it with krew.
type krewPlugin struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       krewSpec       `json:"spec"`
}

type krewSpec struct {
	Version          string         `json:"version"`
	Homepage         string         `json:"homepage"`
	ShortDescription string         `json:"shortDescription"`
	Description      string         `json:"description"`
	Platforms        []krewPlatform `json:"platforms"`
}

type krewPlatform struct {
	Selector map[string]map[string]string `json:"selector"`
	URI      string                       `json:"uri"`
	SHA256   string                       `json:"sha256"`
	Files    []map[string]string          `json:"files"`
	Bin      string                       `json:"bin"`
}

const krewDescription = `Obtains a Google OAuth refresh token with Google's consent flow and stores it
with a GoogleOAuthGrant, which the grantkeeper operator keeps refreshed into a
Secret holding a current access token. Shows grants' status, requests refreshes,
revokes grants, makes consent links and configures Cross-Account Protection.
Needs the grantkeeper operator in the cluster.
`

// KrewManifest is the plugin's krew manifest for the archives, downloaded from
// <downloadURL>/<version>/<archive>.
func KrewManifest(version, downloadURL string, archives []Archive) ([]byte, error) {
	p := krewPlugin{
		APIVersion: "krew.googlecontainertools.github.com/v1alpha2",
		Kind:       "Plugin",
		Metadata:   map[string]any{"name": "grantkeeper"},
		Spec: krewSpec{
			Version:          version,
			Homepage:         "https://github.com/grantkeeper/grantkeeper",
			ShortDescription: "Keep Google OAuth grants fresh in Secrets",
			Description:      krewDescription,
		},
	}
	for _, a := range archives {
		p.Spec.Platforms = append(p.Spec.Platforms, krewPlatform{
			Selector: map[string]map[string]string{"matchLabels": {"os": a.Platform.OS, "arch": a.Platform.Arch}},
			URI:      fmt.Sprintf("%s/%s/%s", strings.TrimSuffix(downloadURL, "/"), version, ArchiveName(version, a.Platform)),
			SHA256:   a.SHA256,
			Files:    []map[string]string{{"from": a.Bin, "to": "."}},
			Bin:      a.Bin,
		})
	}
	return yaml.Marshal(p)
}
