package consent

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCheckLink(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rec := &Record{}
	old := rec.Mint("uid-1", []string{"a"}, false, "why", now, time.Hour)
	id := rec.Mint("uid-1", []string{"a"}, false, "why", now, time.Hour)
	used := *rec
	used.UsedAt = now
	for _, tc := range []struct {
		name    string
		rec     *Record
		id, uid string
		offered bool
		at      time.Time
		want    LinkState
	}{
		{"live", rec, id, "uid-1", true, now, LinkLive},
		{"no record", nil, id, "uid-1", true, now, LinkUnknown},
		{"grant recreated", rec, id, "uid-2", true, now, LinkUnknown},
		{"forged", rec, NewID(), "uid-1", true, now, LinkUnknown},
		{"not an id", rec, strings.ToLower(id), "uid-1", true, now, LinkUnknown},
		{"replaced", rec, old, "uid-1", true, now, LinkUsed},
		{"used", &used, id, "uid-1", true, now, LinkUsed},
		{"expired", rec, id, "uid-1", true, now.Add(time.Hour), LinkExpired},
		{"withdrawn: the grant no longer asks for consent", rec, id, "uid-1", false, now, LinkUsed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rec.Check(tc.id, tc.uid, tc.offered, tc.at); got != tc.want {
				t.Errorf("Check = %v, want %v", got, tc.want)
			}
		})
	}
	if rec.LinkHash == id || strings.Contains(rec.LinkHash, id) {
		t.Error("the record holds the link id itself")
	}
}

func TestKeeps(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rec := &Record{}
	id := rec.Mint("u", []string{"b", "a"}, true, "", now, time.Hour)
	rec.URL = "http://127.0.0.1:1" + LinkPath("ns", "g", NewKey().LinkToken("ns", "g", "u", id, rec.ExpiresAt))
	noURL := *rec
	noURL.URL = ""
	for _, tc := range []struct {
		name        string
		rec         *Record
		offered     bool
		scopes      []string
		incremental bool
		at          time.Time
		want        bool
	}{
		{"same scopes, any order", rec, true, []string{"a", "b"}, true, now, true},
		{"other scopes", rec, true, []string{"a"}, true, now, false},
		{"not incremental now", rec, true, []string{"a", "b"}, false, now, false},
		{"expired", rec, true, []string{"a", "b"}, true, now.Add(2 * time.Hour), false},
		{"withdrawn", rec, false, []string{"a", "b"}, true, now, false},
		{"no link kept", &noURL, true, []string{"a", "b"}, true, now, false},
		{"no record", nil, true, []string{"a", "b"}, true, now, false},
	} {
		if got := tc.rec.Keeps(tc.offered, "u", tc.scopes, tc.incremental, tc.at); got != tc.want {
			t.Errorf("%s: Keeps = %v", tc.name, got)
		}
	}
}

func TestStates(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	state, nonce := NewKey().NewState("team-a", "analytics.grant", "u", now)
	ns, name, n, ok := ParseState(state)
	if !ok || ns != "team-a" || name != "analytics.grant" || n != nonce {
		t.Fatalf("ParseState(NewState) = %q %q %v", ns, name, ok)
	}
	link := Hash(NewID())
	rec := &Record{GrantUID: "u", LinkHash: link, ExpiresAt: now.Add(time.Hour), Attempt: &Attempt{StateHash: Hash(nonce), LinkHash: link, Started: now}}
	used := *rec
	used.UsedAt, used.UsedStateHash, used.Attempt = now, Hash(nonce), nil
	replaced := *rec
	replaced.LinkHash = Hash(NewID())
	unbound := *rec
	unbound.Attempt = &Attempt{StateHash: Hash(nonce), Started: now}
	for _, tc := range []struct {
		name    string
		rec     *Record
		nonce   string
		uid     string
		offered bool
		at      time.Time
		want    StateState
	}{
		{"live", rec, nonce, "u", true, now, StateLive},
		{"other nonce", rec, NewID(), "u", true, now, StateUnknown},
		{"other grant uid", rec, nonce, "v", true, now, StateUnknown},
		{"no attempt", &Record{GrantUID: "u", ExpiresAt: now.Add(time.Hour)}, nonce, "u", true, now, StateUnknown},
		{"used, by this state", &used, nonce, "u", true, now, StateUsed},
		// Finding 9: a used link tells nothing to a state whose secret part does not match.
		{"used, other nonce", &used, NewID(), "u", true, now, StateUnknown},
		{"used before states were remembered", &Record{GrantUID: "u", UsedAt: now}, nonce, "u", true, now, StateUnknown},
		{"link expired", rec, nonce, "u", true, now.Add(time.Hour), StateExpired},
		// Finding 7: attempts are bound to the link offered now, and short-lived.
		{"link withdrawn", rec, nonce, "u", false, now, StateUsed},
		{"link replaced", &replaced, nonce, "u", true, now, StateUsed},
		{"attempt bound to no link", &unbound, nonce, "u", true, now, StateUsed},
		{"attempt at 14m59s", rec, nonce, "u", true, now.Add(AttemptTTL - time.Second), StateLive},
		{"attempt at 15m", rec, nonce, "u", true, now.Add(AttemptTTL), StateExpired},
	} {
		if got := tc.rec.CheckState(tc.nonce, tc.uid, tc.offered, tc.at); got != tc.want {
			t.Errorf("%s: CheckState = %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{"", ".", nonce, "e30." + nonce, "!!!." + nonce, strings.Repeat("A", 600), state + "x"} {
		if _, _, _, ok := ParseState(bad); ok {
			t.Errorf("ParseState(%q) accepted", bad)
		}
	}
}

func TestParseLinkPath(t *testing.T) {
	id := NewKey().LinkToken("ns", "g.x", "u", NewID(), time.Now().Add(time.Hour))
	if ns, name, got, ok := ParseLinkPath(LinkPath("ns", "g.x", id)); !ok || ns != "ns" || name != "g.x" || got != id {
		t.Fatalf("round trip failed")
	}
	for _, bad := range []string{"/c/ns/g", "/c/ns/g/" + id + "/x", "/c/NS/g/" + id, "/c/ns/../" + id, "/x/ns/g/" + id, "/c/ns/g/" + strings.ToLower(id), "/c/ns/g/" + NewID(), "/c/ns/g/" + strings.Replace(id, ".", ".0", 1)} {
		if _, _, _, ok := ParseLinkPath(bad); ok {
			t.Errorf("ParseLinkPath(%q) accepted", bad)
		}
	}
}

func TestAuthURL(t *testing.T) {
	raw := AuthRequest{AuthURL: "https://accounts.google.com/o/oauth2/v2/auth", ClientID: "cid", RedirectURI: "https://c.example.com/callback",
		Scopes: []string{"s1", "email"}, State: "st", Verifier: "v", LoginHint: "a@example.com"}.URL()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{"client_id": "cid", "redirect_uri": "https://c.example.com/callback", "response_type": "code",
		"scope": "s1 email openid", "access_type": "offline", "prompt": "consent",
		"state": "st", "code_challenge_method": "S256", "login_hint": "a@example.com"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	// Issue 28: never include_granted_scopes (it would merge other namespaces' scopes).
	if q.Has("include_granted_scopes") {
		t.Errorf("the URL sends include_granted_scopes=%q", q.Get("include_granted_scopes"))
	}
	if q.Get("code_challenge") == "" || q.Has("code_verifier") || strings.Contains(raw, "=v&") {
		t.Error("the challenge is missing or the verifier is in the URL")
	}
	if u.Host != "accounts.google.com" {
		t.Errorf("redirect target %q", u.Host)
	}
}

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		name    string
		c       Callback
		kind    Kind
		store   bool
		missing int
	}{
		{"denied", Callback{Error: "access_denied"}, PageDenied, false, 0},
		{"other error", Callback{Error: "server_error"}, PageError, false, 0},
		{"all granted", Callback{Requested: []string{"a"}, Granted: []string{"a", "openid"}}, PageGranted, true, 0},
		{"identity scopes are not missing", Callback{Requested: []string{"a", "email"}, Granted: []string{"a"}}, PageGranted, true, 0},
		{"partial", Callback{Requested: []string{"a", "b"}, Granted: []string{"a"}}, PagePartial, true, 1},
		{"granted under Google's canonical name", Callback{Requested: []string{"profile"}, Granted: []string{"https://www.googleapis.com/auth/userinfo.profile"}}, PageGranted, true, 0},
		{"hint matches, any case", Callback{Requested: []string{"a"}, Granted: []string{"a"}, LoginHint: "Ana@example.com", Email: "ana@example.com", EmailVerified: true}, PageGranted, true, 0},
		{"mismatch", Callback{Requested: []string{"a"}, Granted: []string{"a"}, LoginHint: "ana@example.com", Email: "ben@example.com", EmailVerified: true}, PageMismatch, false, 0},
		// Finding 8: anyone can name an address they do not own on a Google account.
		{"hint matches an unverified email", Callback{Requested: []string{"a"}, Granted: []string{"a"}, LoginHint: "ana@example.com", Email: "ana@example.com"}, PageMismatch, false, 0},
		{"no hint: verification not needed", Callback{Requested: []string{"a"}, Granted: []string{"a"}, Email: "ana@example.com"}, PageGranted, true, 0},
		{"hint without email", Callback{Requested: []string{"a"}, Granted: []string{"a"}, LoginHint: "ana@example.com"}, PageMismatch, false, 0},
	} {
		kind, store, missing := Outcome(tc.c)
		if kind != tc.kind || store != tc.store || len(missing) != tc.missing {
			t.Errorf("%s: Outcome = %v %v %v", tc.name, kind, store, missing)
		}
	}
}

func TestPagesEscapeAndStatus(t *testing.T) {
	p := Page{Kind: PageMismatch, Namespace: "ns", Grant: "<script>g", Actual: "b@x"}
	body := string(Render(p))
	if strings.Contains(body, "<script>g") || !strings.Contains(body, "b@x") || p.Status() != 403 {
		t.Errorf("mismatch page: %d %s", p.Status(), body)
	}
	for k, want := range map[Kind]int{PageGranted: 200, PagePartial: 200, PageDenied: 200, PageExpired: 410, PageUsed: 410, PageUnknown: 404, PageBadState: 400} {
		if got := (Page{Kind: k}).Status(); got != want {
			t.Errorf("%s: HTTP %d, want %d", k, got, want)
		}
	}
}

// Finding 12: a long grant's hashed link-Secret name is no short grant's name.
func TestSecretNameCannotCollide(t *testing.T) {
	long := strings.Repeat("a", 240)
	hashed := SecretName(long)
	if len(hashed) > 253 {
		t.Fatalf("%q is too long for a Secret name", hashed)
	}
	short, ok := strings.CutPrefix(hashed, "grantkeeper-consent-")
	if ok && SecretName(short) == hashed {
		t.Errorf("grant %q and grant %q share the link Secret %q", long[:10]+"...", short, hashed)
	}
	for _, n := range []string{"g", strings.Repeat("b", 233)} {
		if got := SecretName(n); got != "grantkeeper-consent-"+n {
			t.Errorf("SecretName(%q) = %q", n, got)
		}
	}
	if SecretName(strings.Repeat("a", 234)) == SecretName(strings.Repeat("a", 235)) {
		t.Error("two long names share a link Secret")
	}
}

// A claimed link is pending while the grant's status answers the inputs it was claimed for:
// the controller does not replace it (its token is on its way, or the callback releases it).
func TestPending(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	claimed := &Record{}
	claimed.Mint("u", []string{"a"}, false, "", now, time.Hour)
	claimed.UsedAt, claimed.UsedFingerprint = now, "fp"
	released := *claimed
	released.UsedAt, released.UsedFingerprint = time.Time{}, ""
	for _, tc := range []struct {
		name string
		rec  *Record
		uid  string
		fp   string
		at   time.Time
		want bool
	}{
		{"claimed, status still answers the same inputs", claimed, "u", "fp", now.Add(time.Minute), true},
		{"the status answers newer inputs (the token arrived)", claimed, "u", "fp2", now.Add(time.Minute), false},
		{"released", &released, "u", "fp", now, false},
		{"another grant (recreated)", claimed, "v", "fp", now, false},
		{"expired", claimed, "u", "fp", now.Add(2 * time.Hour), false},
		{"no record", nil, "u", "fp", now, false},
	} {
		if got := tc.rec.Pending(tc.uid, tc.fp, tc.at); got != tc.want {
			t.Errorf("%s: Pending = %v, want %v", tc.name, got, tc.want)
		}
	}
}
