package fakegoogle

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// The fake's RISC stream management API (risc.googleapis.com/v1beta), served at
// StreamAPIURL: stream:update and stream:verify, authenticated with a service account's
// self-signed JWT (aud the RiscManagementService) whose key the fake issued.

const riscAudience = "https://risc.googleapis.com/google.identity.risc.v1beta.RiscManagementService"

// Stream is the configured event stream.
type Stream struct {
	URL            string
	Method         string
	EventsRequired []string
	// Admin is the service account that configured it.
	Admin string
}

// StreamAPIURL is the base URL of the stream API (kubectl grantkeeper risc --stream-api).
func (s *Server) StreamAPIURL() string { return s.URL() + "/v1beta" }

// Stream returns the configured stream (zero when none).
func (s *Server) Stream() Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream
}

// AllowRISCAdmin grants roles/riscconfigs.admin to a service account.
func (s *Server) AllowRISCAdmin(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.riscAdmins == nil {
		s.riscAdmins = map[string]bool{}
	}
	s.riscAdmins[email] = true
}

// OnStreamVerify sets what stream:verify does: send a verification event carrying state to
// the stream's URL (tests plug a risctransmitter in).
func (s *Server) OnStreamVerify(fn func(url, state string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onVerify = fn
}

func googleError(w http.ResponseWriter, code int, status, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "status": status, "message": msg}})
}

// riscCaller checks the bearer JWT and returns the service account, or answers an error.
// StreamAPIRequests counts calls to the stream API (update, verify), authenticated or not.
func (s *Server) StreamAPIRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streamCalls
}

func (s *Server) riscCaller(w http.ResponseWriter, r *http.Request) (string, bool) {
	s.mu.Lock()
	s.streamCalls++
	s.mu.Unlock()
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		googleError(w, 401, "UNAUTHENTICATED", "Request is missing required authentication credential.")
		return "", false
	}
	var email string
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(riscAudience), jwt.WithExpirationRequired()).Parse(raw, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		s.mu.Lock()
		defer s.mu.Unlock()
		k := s.saKeys[kid]
		if k == nil || k.deleted {
			return nil, jwt.ErrTokenUnverifiable
		}
		email = k.email
		return k.public, nil
	})
	if err != nil {
		googleError(w, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
		return "", false
	}
	s.mu.Lock()
	admin := s.riscAdmins[email]
	s.mu.Unlock()
	if !admin {
		googleError(w, 403, "PERMISSION_DENIED", "The caller does not have permission")
		return "", false
	}
	return email, true
}

func (s *Server) streamUpdate(w http.ResponseWriter, r *http.Request) {
	email, ok := s.riscCaller(w, r)
	if !ok {
		return
	}
	var body struct {
		Delivery struct {
			Method string `json:"delivery_method"`
			URL    string `json:"url"`
		} `json:"delivery"`
		Events []string `json:"events_requested"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Delivery.URL == "" {
		googleError(w, 400, "INVALID_ARGUMENT", "Invalid stream configuration.")
		return
	}
	s.mu.Lock()
	s.stream = Stream{URL: body.Delivery.URL, Method: body.Delivery.Method, EventsRequired: body.Events, Admin: email}
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{})
}

func (s *Server) streamVerify(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.riscCaller(w, r); !ok {
		return
	}
	var body struct {
		State string `json:"state"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	st, fn := s.stream, s.onVerify
	s.mu.Unlock()
	if st.URL == "" {
		googleError(w, 400, "FAILED_PRECONDITION", "No stream is configured for this project.")
		return
	}
	if fn != nil {
		if err := fn(st.URL, body.State); err != nil {
			googleError(w, 500, "INTERNAL", "Delivering the verification event failed.")
			return
		}
	}
	writeJSON(w, 200, map[string]any{})
}
