package risc_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/test/framework/risctransmitter"
)

// FuzzReceiver: whatever arrives, the receiver answers 202 or 400, never panics, and only a
// 202 reaches the sink.
func FuzzReceiver(f *testing.F) {
	tx, err := risctransmitter.New()
	if err != nil {
		f.Fatal(err)
	}
	defer tx.Close()
	ok := risctransmitter.Options{Audience: ourClient}
	valid := tx.Sign(ok, tx.AccountEvent(risc.AccountDisabled, "42", map[string]any{"reason": "hijacking"}))
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(tx.SignNone(ok, tx.AccountEvent(risc.TokensRevoked, "42", nil)))
	f.Add(tx.SignHS256WithPublicKey(ok, risctransmitter.TokenRevoked("1//0abcdefghijklmnopqrstuvwxyz", risc.AlgHashSHA512)))
	f.Add("e30.e30.")
	f.Add(strings.Repeat(".", 100))
	sink := &recordingSink{}
	h := &risc.Handler{Verifier: &risc.Verifier{ConfigurationURL: tx.ConfigurationURL(), RefetchFloor: time.Hour}, Sink: sink, Log: logr.Discard()}
	f.Fuzz(func(t *testing.T, body string) {
		before := sink.count()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", risc.Path, strings.NewReader(body)))
		switch w.Code {
		case 202:
		case 400:
			if sink.count() != before {
				t.Fatal("a rejected delivery reached the sink")
			}
		default:
			t.Fatalf("answered %d", w.Code)
		}
	})
}
