package leakcheck

import "testing"

func TestFind(t *testing.T) {
	secret := "ya29.a0AfB_byC3xyz0123456789abcdef"
	for text, want := range map[string]int{
		"nothing here":                          0,
		"token=" + secret:                       1,
		"prefix " + secret[5:17] + " suffix":    1, // a 12-character slice
		"prefix " + secret[5:16] + " suffix":    0, // 11 characters are not enough
		"short secret qzq in text":              1,
		"sha256:1a2b3c4d is only a fingerprint": 0,
	} {
		if got := Find(text, []string{secret, "qzq"}); len(got) != want {
			t.Errorf("Find(%q) = %v, want %d finds", text, got, want)
		}
	}
}

func TestPrivateKeys(t *testing.T) {
	key := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
	if !HasPEMBlock(`{"msg":"`+"-----BEGIN RSA PRIVATE KEY-----"+`"}`) || HasPEMBlock("BEGIN of a PEM-free log") {
		t.Error("HasPEMBlock misjudges")
	}
	// A slice of the key's body, as a log line would quote it without the PEM frame.
	if got := Find("error near ADANBgkqhkiG9w0BAQE", []string{key}); len(got) != 1 {
		t.Errorf("a 12-character slice of a private key not found: %v", got)
	}
}
