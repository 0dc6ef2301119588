// Command adc is an ordinary Go program that calls a Google API with Application Default
// Credentials: nothing in it knows about grantkeeper. In a Pod with grantkeeper's
// metadata-server sidecar (the oauth.grantkeeper.dev/inject annotation adds it, with
// GCE_METADATA_HOST), google.FindDefaultCredentials gets the grant's token from the sidecar
// and keeps it fresh across refreshes, as it would on GCE.
//
// It calls API_URL every INTERVAL and logs one line per call with the HTTP status (never the
// token), which is what grantkeeper's tests read. SCOPES (space-separated, optional) are
// asked of the credentials; leave it empty to use the grant's scopes as they are.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

func main() {
	api := getenv("API_URL", "https://www.googleapis.com/oauth2/v3/userinfo")
	interval, err := time.ParseDuration(getenv("INTERVAL", "10s"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "INTERVAL:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	creds, err := google.FindDefaultCredentials(ctx, strings.Fields(os.Getenv("SCOPES"))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "finding credentials:", err)
		os.Exit(1)
	}
	fmt.Printf("credentials found project=%q\n", creds.ProjectID)
	client := oauth2.NewClient(ctx, creds.TokenSource)
	client.Timeout = 10 * time.Second
	call(client, api)
	for range time.Tick(interval) {
		call(client, api)
	}
}

func call(client *http.Client, api string) {
	now := time.Now().UTC().Format(time.RFC3339)
	resp, err := client.Get(api)
	if err != nil {
		// Errors from the token source say what the metadata server answered (never a token).
		fmt.Printf("%s error=%q\n", now, err.Error())
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Printf("%s status=%d\n", now, resp.StatusCode)
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
