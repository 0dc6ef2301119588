package metadataserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/secretvolume"
)

// secretData is a derived Secret's data as the controller writes it (derivedsecret.Data).
func secretData(tok string, expiry time.Time, extra ...string) map[string][]byte {
	d := map[string][]byte{
		"access_token": []byte(tok),
		"token_type":   []byte("Bearer"),
		"expiry":       []byte(expiry.UTC().Format(time.RFC3339)),
		"token.json":   []byte(`{"access_token":"` + tok + `","token_type":"Bearer","expiry":"` + expiry.UTC().Format(time.RFC3339) + `"}`),
	}
	for i := 0; i+1 < len(extra); i += 2 {
		d[extra[i]] = []byte(extra[i+1])
	}
	return d
}

func TestTokenDirFollowsKubeletSwaps(t *testing.T) {
	dir := t.TempDir()
	d := &TokenDir{Path: dir}
	if _, err := d.Load(); !IsNoToken(err) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("before the Secret appears: %v, want a no-token error naming %s", err, dir)
	}
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	for i, tok := range []string{"ya29.first", "ya29.second", "ya29.third"} {
		extra := []string{}
		if i == 2 {
			extra = []string{"scope", "openid https://www.googleapis.com/auth/userinfo.email\n", "email", "ada@example.com\n"}
		}
		if err := secretvolume.Write(dir, secretData(tok, exp.Add(time.Duration(i)*time.Minute), extra...)); err != nil {
			t.Fatal(err)
		}
		s, err := d.Load()
		if err != nil {
			t.Fatal(err)
		}
		if s.AccessToken != tok || !s.Expiry.Equal(exp.Add(time.Duration(i)*time.Minute)) || s.TokenType != "Bearer" {
			t.Fatalf("after swap %d: got %q %v, want %q", i, s.AccessToken, s.Expiry, tok)
		}
		if i == 2 && (s.Email != "ada@example.com" || strings.Join(s.Scopes, " ") != "openid https://www.googleapis.com/auth/userinfo.email") {
			t.Errorf("optional keys: %q %q", s.Email, s.Scopes)
		}
		if i < 2 && (s.Email != "" || s.Scopes != nil) {
			t.Errorf("no optional keys, got %q %q", s.Email, s.Scopes)
		}
	}
}

// A plain directory (no ..data, as when run locally) is read on every request.
func TestTokenDirPlainDirectory(t *testing.T) {
	dir := t.TempDir()
	d := &TokenDir{Path: dir}
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	for _, tok := range []string{"ya29.one", "ya29.two"} {
		for k, v := range secretData(tok, exp) {
			if err := os.WriteFile(filepath.Join(dir, k), v, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if s, err := d.Load(); err != nil || s.AccessToken != tok {
			t.Fatalf("got %q, %v; want %q", s.AccessToken, err, tok)
		}
	}
}

func TestTokenDirBadContent(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name string
		data map[string][]byte
		want string
	}{
		{"subPath-style: no access_token", map[string][]byte{"expiry": []byte(exp.Format(time.RFC3339))}, `no "access_token" file: mount the grant's whole derived Secret`},
		{"no expiry", map[string][]byte{"access_token": []byte("ya29.x")}, `no "expiry" file`},
		{"bad expiry", map[string][]byte{"access_token": []byte("ya29.x"), "expiry": []byte("tomorrow")}, `"expiry" in`},
		{"empty token", map[string][]byte{"access_token": []byte("\n"), "expiry": []byte(exp.Format(time.RFC3339))}, "is empty"},
		{"huge file", map[string][]byte{"access_token": []byte(strings.Repeat("x", maxFileSize+1)), "expiry": []byte(exp.Format(time.RFC3339))}, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := secretvolume.Write(dir, tc.data); err != nil {
				t.Fatal(err)
			}
			_, err := (&TokenDir{Path: dir}).Load()
			if !IsNoToken(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a no-token error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "ya29") {
				t.Errorf("the error carries file content: %v", err)
			}
		})
	}
}

// BenchmarkLoadUnchanged is the per-request cost while the Secret does not change.
func BenchmarkLoadUnchanged(b *testing.B) {
	dir := b.TempDir()
	if err := secretvolume.Write(dir, secretData("ya29.bench", time.Now().Add(time.Hour))); err != nil {
		b.Fatal(err)
	}
	d := &TokenDir{Path: dir}
	for b.Loop() {
		if _, err := d.Load(); err != nil {
			b.Fatal(err)
		}
	}
}

// While the kubelet keeps swapping versions, every read is one whole version (the token
// matches its expiry) and none fails for losing a race with the removal of the old one.
func TestTokenDirConsistentDuringSwaps(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(time.Hour).Truncate(time.Second)
	version := func(i int) map[string][]byte {
		return secretData(fmt.Sprintf("ya29.v%d", i), base.Add(time.Duration(i)*time.Second))
	}
	if err := secretvolume.Write(dir, version(0)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 100; i++ {
			if err := secretvolume.Write(dir, version(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	d := &TokenDir{Path: dir}
	for reads := 0; ; reads++ {
		select {
		case <-done:
			t.Logf("%d reads during 100 swaps", reads)
			return
		default:
		}
		s, err := d.Load()
		if err != nil {
			<-done // let the writer finish before the directory is removed
			t.Fatalf("read %d: %v", reads, err)
		}
		var i int
		if _, err := fmt.Sscanf(s.AccessToken, "ya29.v%d", &i); err != nil || !s.Expiry.Equal(base.Add(time.Duration(i)*time.Second)) {
			<-done
			t.Fatalf("mixed versions: %q with expiry %v", s.AccessToken, s.Expiry)
		}
	}
}
