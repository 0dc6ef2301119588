package grantinputs

import "github.com/grantkeeper/grantkeeper/internal/credentials"

// TokenLocation is where a form keeps its refresh token: a key of a Secret in the grant's
// namespace, holding the token itself or a document around it.
type TokenLocation struct {
	Secret, Key string
	// Recordable: the key holds the token alone, so the token may be kept in the record by
	// the Secret's version (records.go); a token inside a document is read live each time.
	Recordable bool
	// get reads the token from the Secret's data, or says what is wrong (naming the Secret
	// and key, never the value).
	get func(data map[string][]byte) (string, *credentials.Problem)
	// put returns the key's new value holding token, everything else kept.
	put func(old []byte, token string) ([]byte, error)
}

// Stored is the refresh token the Secret's data holds, "" when none is usable.
func (l *TokenLocation) Stored(data map[string][]byte) string {
	t, p := l.get(data)
	if p != nil {
		return ""
	}
	return t
}

// Put writes token into the Secret's data at the location.
func (l *TokenLocation) Put(data map[string][]byte, token string) error {
	v, err := l.put(data[l.Key], token)
	if err != nil {
		return err
	}
	data[l.Key] = v
	return nil
}

// StoredRefreshToken is the refresh token a grant's refresh-token Secret (its data) holds,
// "" when there is none or the grant's form has no refresh token.
func StoredRefreshToken(f Form, data map[string][]byte) string {
	l := f.RefreshToken()
	if l == nil {
		return ""
	}
	return l.Stored(data)
}
