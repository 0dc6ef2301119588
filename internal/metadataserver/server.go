package metadataserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/netutil"
)

// Handler serves Answer over HTTP, reading the mounted Secret on each request.
type Handler struct {
	Dir    *TokenDir
	Config Config
	Now    func() time.Time // time.Now when nil
	Log    *slog.Logger     // discards when nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	var m Mounted
	m.Snapshot, m.Err = h.Dir.Load()
	resp := Answer(Request{
		Method:    r.Method,
		Path:      r.URL.Path,
		Query:     r.URL.Query(),
		Flavor:    r.Header.Get(FlavorHeader),
		Forwarded: len(r.Header.Values("X-Forwarded-For")) > 0,
		Body:      r.ContentLength != 0, // -1 (chunked) counts as a body
	}, m, h.Config, now())

	hd := w.Header()
	hd.Set(FlavorHeader, FlavorValue)
	hd.Set("Content-Type", resp.ContentType)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	if resp.Status == http.StatusMethodNotAllowed {
		hd.Set("Allow", http.MethodGet)
	}
	if resp.Status >= 400 {
		if r.ContentLength != 0 {
			// Do not read an unexpected body to keep the connection: close it.
			hd.Set("Connection", "close")
		}
		if h.Log != nil {
			// Path only: the query may be long, and nothing in a request is secret, but keep
			// log lines bounded.
			h.Log.Info("refused", "method", clip(r.Method, 16), "path", clip(r.URL.Path, 200), "status", resp.Status, "reason", strings.TrimSpace(resp.Body))
		}
	}
	w.WriteHeader(resp.Status)
	_, _ = io.WriteString(w, resp.Body)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Limits bound what one client can make the server hold: it is attack surface (anything in
// the Pod can reach it).
type Limits struct {
	ReadHeaderTimeout time.Duration // a slow client is cut off after this
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int // request line and headers: a huge query is refused with 431
	MaxConns          int // connections served at once; more wait in the kernel's backlog
}

// DefaultLimits fit the libraries' requests (a few hundred bytes, answered at once).
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    8 << 10,
		MaxConns:          64,
	}
}

// Server is a listening metadata server.
type Server struct {
	http     *http.Server
	listener net.Listener
}

// Listen binds addr, which must be a loopback address: the server hands out the grant's
// token to whoever asks, so it must be reachable only from inside the Pod.
func Listen(addr string, h http.Handler, l Limits) (*Server, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if l.MaxConns > 0 {
		ln = netutil.LimitListener(ln, l.MaxConns)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
	return &Server{http: srv, listener: ln}, nil
}

// CheckLoopback refuses listen addresses other than loopback IPs (an empty host would mean
// every interface).
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen-address %q: %v (want host:port, such as 127.0.0.1:8988)", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen-address %q: the host must be a loopback IP such as 127.0.0.1: anything that can reach the server gets the grant's token", addr)
	}
	return nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Serve serves until Shutdown; it returns nil after a shutdown.
func (s *Server) Serve() error {
	if err := s.http.Serve(s.listener); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}

// Shutdown stops accepting and waits for requests in flight, up to ctx.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }
