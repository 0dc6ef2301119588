package consent

import (
	"strings"
	"testing"
	"time"
)

// A link or state opens only with the key, grant (namespace, name, UID), id and time it was
// signed for: anything else is refused before the server reads anything.
func TestSignedLinksAndStates(t *testing.T) {
	key, other := NewKey(), NewKey()
	exp := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	id := NewID()
	token := key.LinkToken("ns", "g", "uid", id, exp)
	if got, gotExp, ok := key.OpenLink("ns", "g", "uid", token); !ok || got != id || !gotExp.Equal(exp) {
		t.Fatalf("OpenLink(LinkToken) = %q %v %v", got, gotExp, ok)
	}
	later := strings.Replace(token, ".", "."+"1", 1) // another expiry
	for name, tc := range map[string]struct {
		key                 Key
		ns, grant, uid, tok string
	}{
		"another key":        {other, "ns", "g", "uid", token},
		"no key":             {nil, "ns", "g", "uid", token},
		"another namespace":  {key, "ns2", "g", "uid", token},
		"another grant":      {key, "ns", "g2", "uid", token},
		"a recreated grant":  {key, "ns", "g", "uid2", token},
		"a later expiry":     {key, "ns", "g", "uid", later},
		"another id":         {key, "ns", "g", "uid", NewID() + token[26:]},
		"unsigned":           {key, "ns", "g", "uid", id},
		"signature replaced": {key, "ns", "g", "uid", token[:len(token)-26] + NewID()},
	} {
		if _, _, ok := tc.key.OpenLink(tc.ns, tc.grant, tc.uid, tc.tok); ok {
			t.Errorf("%s: opened", name)
		}
	}

	started := exp.Add(-time.Hour)
	state, nonce := key.NewState("ns", "g", "uid", started)
	st, ok := ParseSignedState(state)
	if !ok || st.Nonce != nonce || st.Namespace != "ns" || st.Name != "g" || !st.Started.Equal(started) || !key.Signed(st, "uid") {
		t.Fatalf("ParseSignedState(NewState) = %+v %v", st, ok)
	}
	if key.Signed(st, "uid2") || other.Signed(st, "uid") {
		t.Error("a state signed for another grant UID, or with another key, was accepted")
	}
	parts := strings.Split(state, ".")
	parts[2] = "1" + parts[2] // another start time
	if st, ok := ParseSignedState(strings.Join(parts, ".")); ok && key.Signed(st, "uid") {
		t.Error("a state with an altered start time was accepted")
	}
}
