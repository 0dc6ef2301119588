// Command consumer is the reference way to use a grantkeeper access token from a pod.
//
// Mount the grant's derived Secret as a volume (the whole Secret: a subPath mount or an
// environment variable never sees a refreshed token) and read the token from the file on
// every request: the kubelet replaces the file in place after each refresh. Never keep a
// token past its expiry.
//
//	volumes:
//	- name: google-token
//	  secret: {secretName: analytics-access-token}
//	containers:
//	- name: app
//	  volumeMounts: [{name: google-token, mountPath: /var/run/secrets/google, readOnly: true}]
//
// It calls API_URL every INTERVAL with "Authorization: Bearer <token>" and logs one line per
// call with the HTTP status, which is what the pod end-to-end test reads.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/oauth2"
)

func main() {
	dir := getenv("TOKEN_DIR", "/var/run/secrets/google")
	api := getenv("API_URL", "https://www.googleapis.com/oauth2/v3/userinfo")
	interval, err := time.ParseDuration(getenv("INTERVAL", "10s"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "INTERVAL:", err)
		os.Exit(2)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	call(client, dir, api)
	for range time.Tick(interval) {
		call(client, dir, api)
	}
}

// token reads token.json (golang.org/x/oauth2's Token JSON) fresh from the mounted Secret.
func token(dir string) (*oauth2.Token, error) {
	b, err := os.ReadFile(filepath.Join(dir, "token.json"))
	if err != nil {
		return nil, err
	}
	var t oauth2.Token
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

func call(client *http.Client, dir, api string) {
	now := time.Now().UTC().Format(time.RFC3339)
	t, err := token(dir)
	if err != nil {
		fmt.Printf("%s error=%q\n", now, err.Error())
		return
	}
	req, _ := http.NewRequest(http.MethodGet, api, nil)
	// SetAuthHeader writes "Authorization: Bearer <access_token>".
	t.SetAuthHeader(req)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Printf("%s error=%q\n", now, err.Error())
		return
	}
	resp.Body.Close()
	// Valid() is false once the token is past its expiry (x/oauth2 allows 10 s of slack):
	// logged so that an expired token in the file would show.
	fmt.Printf("%s status=%d token_valid=%t expiry=%s\n", now, resp.StatusCode, t.Valid(), t.Expiry.UTC().Format(time.RFC3339))
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
