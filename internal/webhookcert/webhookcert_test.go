package webhookcert

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSync(t *testing.T) {
	dir := t.TempDir()
	s := &Syncer{Dir: dir}
	read := func() (string, string) {
		crt, _ := os.ReadFile(filepath.Join(dir, CertName))
		key, _ := os.ReadFile(filepath.Join(dir, KeyName))
		return string(crt), string(key)
	}
	for _, step := range []struct {
		name              string
		data              map[string][]byte
		wantWrote         bool
		wantCert, wantKey string
	}{
		{"empty Secret (not issued yet): nothing written", map[string][]byte{}, false, "", ""},
		{"a certificate without its key: nothing written", map[string][]byte{CertName: []byte("c1")}, false, "", ""},
		{"issued", map[string][]byte{CertName: []byte("c1"), KeyName: []byte("k1"), "ca.crt": []byte("ca")}, true, "c1", "k1"},
		{"unchanged: no write", map[string][]byte{CertName: []byte("c1"), KeyName: []byte("k1")}, false, "c1", "k1"},
		{"rotated", map[string][]byte{CertName: []byte("c2"), KeyName: []byte("k2")}, true, "c2", "k2"},
		{"emptied (being re-issued): the last pair stays", map[string][]byte{}, false, "c2", "k2"},
	} {
		wrote, err := s.sync(step.data)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		crt, key := read()
		if wrote != step.wantWrote || crt != step.wantCert || key != step.wantKey {
			t.Errorf("%s: wrote %v, files %q %q; want %v, %q %q", step.name, wrote, crt, key, step.wantWrote, step.wantCert, step.wantKey)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the key's mode: %v %v", fi.Mode(), err)
	}
}
