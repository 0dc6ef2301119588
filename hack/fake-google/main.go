// Command fake-google serves a stand-in for Google's OAuth 2.0 endpoints on loopback, for
// local runs of the manager (--token-url/--revoke-url) and demos. It registers one client
// and one refresh token from flags; revoke the token by POSTing it to /revoke, as with Google.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8099", "Listen address (loopback only).")
	clientID := flag.String("client-id", "123456789012-example.apps.googleusercontent.com", "OAuth client id to accept.")
	clientSecret := flag.String("client-secret", "GOCSPX-replace-me", "OAuth client secret to accept.")
	refreshToken := flag.String("refresh-token", "1//replace-me", "Refresh token to accept.")
	scopes := flag.String("scopes", "https://www.googleapis.com/auth/analytics.readonly", "Space- or comma-separated scopes the refresh token carries.")
	lifetime := flag.Duration("lifetime", time.Hour, "Lifetime (expires_in) of issued access tokens.")
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		log.Fatalf("--addr %q: the fake listens on loopback only", *addr)
	}
	s := fakegoogle.New()
	s.SetLifetime(*lifetime)
	s.AddClient(*clientID, *clientSecret)
	s.AddRefreshToken(*refreshToken, *clientID, strings.FieldsFunc(*scopes, func(r rune) bool { return r == ' ' || r == ',' })...)
	if err := s.StartOn(*addr); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("fake Google OAuth server on %s (token %s, revoke %s)\n", s.URL(), s.TokenURL(), s.RevokeURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	s.Close()
}
