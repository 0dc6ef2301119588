package risc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/grantkeeper/grantkeeper/internal/credentials"
)

// Google's RISC stream management API.
const (
	DefaultStreamAPI = "https://risc.googleapis.com/v1beta"
	// StreamAudience is the aud of the service account's self-signed JWT that authenticates
	// calls to the stream API (Google's guide: no token exchange, the JWT is the bearer token).
	StreamAudience = "https://risc.googleapis.com/google.identity.risc.v1beta.RiscManagementService"
	// PushDelivery is the only delivery method Google supports.
	PushDelivery = "https://schemas.openid.net/secevent/risc/delivery-method/push"
)

// StreamClient configures the project's event stream as a service account holding
// roles/riscconfigs.admin.
type StreamClient struct {
	BaseURL string // DefaultStreamAPI unless testing
	HTTP    *http.Client
	Key     credentials.ServiceAccountKey
	Now     func() time.Time
}

// Update points the stream at endpoint (the receiver's public https URL ending in /risc) and
// asks for every event type grantkeeper acts on.
func (c *StreamClient) Update(ctx context.Context, endpoint string) error {
	return c.call(ctx, "stream:update", map[string]any{
		"delivery":         map[string]string{"delivery_method": PushDelivery, "url": endpoint},
		"events_requested": EventTypes,
	})
}

// Verify asks Google to send a verification event carrying state to the stream's receiver.
func (c *StreamClient) Verify(ctx context.Context, state string) error {
	return c.call(ctx, "stream:verify", map[string]string{"state": state})
}

// bearer is the service account's self-signed JWT for the stream API.
func (c *StreamClient) bearer() (string, error) {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": c.Key.Email, "sub": c.Key.Email, "aud": StreamAudience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	t.Header["kid"] = c.Key.PrivateKeyID
	s, err := t.SignedString(c.Key.PrivateKey)
	if err != nil {
		return "", fmt.Errorf("signing the service account's JWT: %w", err)
	}
	return s, nil
}

func (c *StreamClient) call(ctx context.Context, method string, body any) error {
	tok, err := c.bearer()
	if err != nil {
		return err
	}
	js, _ := json.Marshal(body)
	base := c.BaseURL
	if base == "" {
		base = DefaultStreamAPI
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/"+method, bytes.NewReader(js))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	// Google's error shape: {"error": {"code", "message", "status"}}.
	var e struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(raw, &e)
	hint := ""
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = " (the service account needs the role roles/riscconfigs.admin in the project, and the RISC API must be enabled)"
	}
	return fmt.Errorf("%s: HTTP %d %s: %s%s", method, resp.StatusCode, e.Error.Status, e.Error.Message, hint)
}
