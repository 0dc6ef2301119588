// Command metadata-server emulates the GCE metadata server inside a Pod, serving a
// grantkeeper grant's access token (read from its derived Secret mounted as a volume) to
// Google's client libraries, which then work unmodified with Application Default
// Credentials. It runs as a native sidecar and listens on loopback only.
//
// With --check it is its own probe: it asks the running server for a token and exits 0 only
// if one is served (the kubelet's HTTP probes cannot reach a loopback listener).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/grantkeeper/grantkeeper/internal/metadataserver"
	"github.com/grantkeeper/grantkeeper/internal/version"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("metadata-server", flag.ContinueOnError)
	var (
		addr, dir, project, numeric, email, scopes string
		check, showVersion                         bool
	)
	fs.StringVar(&addr, "listen-address", "127.0.0.1:8988", "Loopback address to serve on (point GCE_METADATA_HOST, GCE_METADATA_ROOT and GCE_METADATA_IP at it).")
	fs.StringVar(&dir, "token-dir", "/var/run/secrets/grantkeeper", "Directory where the grant's derived Secret is mounted as a whole-Secret volume.")
	fs.StringVar(&project, "project-id", "", "Answer for project/project-id (404 when empty).")
	fs.StringVar(&numeric, "numeric-project-id", "", "Answer for project/numeric-project-id (404 when empty).")
	fs.StringVar(&email, "email", "", "The grant's account email, unless the Secret has an \"email\" key.")
	fs.StringVar(&scopes, "scopes", "", "Comma-separated scopes the grant carries, unless the Secret has a \"scope\" key. Token requests asking for others are refused; when unknown, they are not checked.")
	fs.BoolVar(&check, "check", false, "Probe mode: ask the server at --listen-address for a token; exit 0 if it serves one.")
	fs.BoolVar(&showVersion, "version", false, "Print the version and exit.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if showVersion {
		_, err := fmt.Fprintln(out, version.Line("metadata-server"))
		return err
	}
	if check {
		return probe(addr, out)
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := metadataserver.Config{ProjectID: project, NumericProjectID: numeric, Email: email, TokenDir: dir}
	for _, s := range strings.FieldsFunc(scopes, func(r rune) bool { return r == ',' || r == ' ' }) {
		cfg.Scopes = append(cfg.Scopes, s)
	}
	tokens := &metadataserver.TokenDir{Path: dir}
	if _, err := tokens.Load(); err != nil {
		// Not fatal: the Secret may appear later (the grant is not Ready yet); token requests
		// get a 503 that says why until then.
		log.Warn("no token to serve yet", "reason", err)
	}
	srv, err := metadataserver.Listen(addr, &metadataserver.Handler{Dir: tokens, Config: cfg, Log: log}, metadataserver.DefaultLimits())
	if err != nil {
		return err
	}
	log.Info("serving", "address", srv.Addr(), "tokenDir", dir)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// probe never prints the token: only the status and, on failure, the server's message.
func probe(addr string, out io.Writer) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/computeMetadata/v1/instance/service-accounts/default/token", nil)
	if err != nil {
		return err
	}
	req.Header.Set(metadataserver.FlavorHeader, metadataserver.FlavorValue)
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("metadata server not answering: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("no token served: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	fmt.Fprintln(out, "ok: a token is served")
	return nil
}
