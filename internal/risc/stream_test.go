package risc_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"net/http/httptest"

	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/risctransmitter"
)

func streamClient(t *testing.T, g *fakegoogle.Server, email string) *risc.StreamClient {
	t.Helper()
	k := g.NewServiceAccountKey(email)
	key, p := credentials.ParseServiceAccountKey("key.json", map[string][]byte{"k": k.JSON}, "k")
	if p != nil {
		t.Fatal(p)
	}
	return &risc.StreamClient{BaseURL: g.StreamAPIURL(), Key: key}
}

// register configures the stream with every event type; verify makes Google send a
// verification event, which the receiver accepts and ignores.
func TestRegisterAndVerify(t *testing.T) {
	g := fakegoogle.New()
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tx, err := risctransmitter.New()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	sink := &recordingSink{}
	srv := httptest.NewServer(&risc.Handler{Verifier: &risc.Verifier{ConfigurationURL: tx.ConfigurationURL()}, Sink: sink, Log: logr.Discard()})
	defer srv.Close()
	g.OnStreamVerify(func(url, state string) error {
		_, err := tx.Post(url, tx.Sign(risctransmitter.Options{Audience: ourClient}, risctransmitter.Event{Type: risc.Verification, Body: map[string]any{"state": state}}))
		return err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	admin := "risc-admin@p.iam.gserviceaccount.com"
	g.AllowRISCAdmin(admin)
	c := streamClient(t, g, admin)
	if err := c.Verify(ctx, "early"); err == nil {
		t.Error("verify before register succeeded")
	}
	if err := c.Update(ctx, srv.URL+risc.Path); err != nil {
		t.Fatal(err)
	}
	st := g.Stream()
	if st.URL != srv.URL+risc.Path || st.Method != risc.PushDelivery || !slices.Equal(st.EventsRequired, risc.EventTypes) || st.Admin != admin {
		t.Errorf("stream = %+v", st)
	}
	if err := c.Verify(ctx, "s-123"); err != nil {
		t.Fatal(err)
	}
	if sink.count() != 1 || sink.events[0].Type != risc.Verification || sink.events[0].State != "s-123" {
		t.Errorf("receiver got %+v, want one verification event with state s-123", sink.events)
	}

	other := streamClient(t, g, "not-admin@p.iam.gserviceaccount.com")
	err = other.Update(ctx, "https://evil.example.com/risc")
	if err == nil || !strings.Contains(err.Error(), "roles/riscconfigs.admin") {
		t.Errorf("a service account without the role: %v, want an error naming roles/riscconfigs.admin", err)
	}
	if g.Stream().URL != srv.URL+risc.Path {
		t.Error("a refused update changed the stream")
	}
}
