// Package googleapi names Google's OAuth 2.0 endpoints, once for every binary. Flags override
// them; tests point them at the fake Google server.
package googleapi

// Endpoints from Google's OAuth 2.0 guides (web-server and installed-app flows).
const (
	AuthURL   = "https://accounts.google.com/o/oauth2/v2/auth"
	TokenURL  = "https://oauth2.googleapis.com/token"
	RevokeURL = "https://oauth2.googleapis.com/revoke"
)
