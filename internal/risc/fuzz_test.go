package risc_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/test/framework/risctransmitter"
)

// FuzzReceiver: whatever arrives, the receiver answers 202 or 400 and never panics; a 202 is
// only for a token this test signed validly, and it reaches the sink unless its jti was
// seen; a 400 never reaches the sink.
//
// The transmitter's key, kid and issuer are fixed and the tokens' jti and iat too, so that
// the fuzzing workers (separate processes) verify and recognise the seeds the coordinator
// signed. testdata/fuzz-transmitter-key.pem is a test key and signs nothing else.
func FuzzReceiver(f *testing.F) {
	b, err := os.ReadFile("testdata/fuzz-transmitter-key.pem")
	if err != nil {
		f.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		f.Fatal("testdata/fuzz-transmitter-key.pem: no PEM block")
	}
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		f.Fatal(err)
	}
	tx, err := risctransmitter.NewWith(risctransmitter.Fixed{Key: key, KeyID: "fuzz-1", Issuer: "https://accounts.google.com/"})
	if err != nil {
		f.Fatal(err)
	}
	defer tx.Close()
	iat := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	opts := func(jti string) risctransmitter.Options {
		return risctransmitter.Options{Audience: ourClient, JTI: jti, IssuedAt: iat}
	}
	// signed: the valid tokens (by decodedParts) and their jtis.
	signed := map[string]string{}
	sign := func(jti string, ev risctransmitter.Event) string {
		raw := tx.Sign(opts(jti), ev)
		signed[decodedParts(raw)] = jti
		return raw
	}
	valid := sign("fuzz-a", tx.AccountEvent(risc.AccountDisabled, "42", map[string]any{"reason": "hijacking"}))
	f.Add(valid)
	f.Add(valid + "\n")
	f.Add(sign("fuzz-b", risctransmitter.TokenRevoked("1//0abcdefghijklmnopqrstuvwxyz", risc.AlgHashSHA512)))
	f.Add(valid[:len(valid)/2])
	f.Add(tx.SignNone(opts("fuzz-none"), tx.AccountEvent(risc.TokensRevoked, "42", nil)))
	f.Add(tx.SignHS256WithPublicKey(opts("fuzz-hs256"), risctransmitter.TokenRevoked("1//0abcdefghijklmnopqrstuvwxyz", risc.AlgHashSHA512)))
	f.Add(tx.Sign(risctransmitter.Options{Audience: "42-other.apps.googleusercontent.com", JTI: "fuzz-aud", IssuedAt: iat}, tx.AccountEvent(risc.AccountDisabled, "42", nil)))
	f.Add("e30.e30.")
	f.Add(strings.Repeat(".", 100))
	sink := &recordingSink{}
	h := &risc.Handler{Verifier: &risc.Verifier{ConfigurationURL: tx.ConfigurationURL(), RefetchFloor: time.Hour}, Sink: sink, Log: logr.Discard()}
	applied := map[string]bool{} // jtis this process's receiver accepted
	f.Fuzz(func(t *testing.T, body string) {
		before := sink.count()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", risc.Path, strings.NewReader(body)))
		grew := sink.count() != before
		switch w.Code {
		case 202:
			jti, ok := signed[decodedParts(strings.TrimSpace(body))]
			if !ok {
				t.Fatalf("accepted a token the test did not sign validly: %.300q", body)
			}
			if applied[jti] && grew {
				t.Fatalf("jti %s applied again", jti)
			}
			if !applied[jti] && !grew {
				t.Fatalf("accepted jti %s but applied nothing", jti)
			}
			applied[jti] = true
		case 400:
			if grew {
				t.Fatal("a rejected delivery reached the sink")
			}
		default:
			t.Fatalf("answered %d", w.Code)
		}
	})
}

// decodedParts is a compact JWT's signed text (header.claims) and its decoded signature: a
// signature's base64 can be spelt more than one way, the signed text cannot.
func decodedParts(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return ""
	}
	return parts[0] + "." + parts[1] + "." + string(sig)
}
