package metadataserver

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// Optional keys of the derived Secret the sidecar also reads. The controller does not write
// them yet; until it does, the --scopes and --email flags supply the same facts.
const (
	// ScopeKey holds the scopes the access token carries, space-separated (as the "scope"
	// field of Google's token response).
	ScopeKey = "scope"
	// EmailKey holds the email address of the Google account that granted access.
	EmailKey = "email"
)

// dataLink is the symlink the kubelet swaps atomically when a Secret volume changes.
const dataLink = "..data"

// maxFileSize bounds what is read from one file of the volume: access tokens are at most
// 2048 bytes; anything far larger is not a derived Secret.
const maxFileSize = 64 << 10

// Snapshot is what one version of the mounted Secret says.
type Snapshot struct {
	AccessToken string
	TokenType   string
	Expiry      time.Time
	Scopes      []string // nil when the Secret does not carry them
	Email       string   // "" when the Secret does not carry it
}

// TokenDir reads the derived Secret mounted as a volume at Path.
//
// It re-reads on every request rather than watching: with the kubelet's layout (files that
// are symlinks into ..data, itself a symlink to a timestamped directory swapped by rename)
// one readlink tells whether anything changed, so a request costs one syscall while nothing
// does, and there is no watch to lose (inotify on a swapped symlink misses events easily,
// and a missed event would mean serving a replaced token). Without ..data (a plain
// directory, as in local runs) the files are re-read each time: they are tiny.
type TokenDir struct {
	Path string

	mu     sync.Mutex
	target string // ..data's target when snap was read
	snap   Snapshot
}

// ErrNoToken wraps every reason there is no token to serve.
var ErrNoToken = errors.New("no access token")

// Load returns the current snapshot. Errors name the directory and the file, never content.
func (d *TokenDir) Load() (Snapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var err error
	// The kubelet deletes the old directory right after a swap: a read that loses that race
	// fails, and is retried against the new target. Each retry follows a swap that really
	// happened (otherwise the loop ends below), so the bound only guards against a volume
	// swapped without pause; three was too few for a reader starved of CPU (seen under -race).
	for range 100 {
		target, lerr := os.Readlink(filepath.Join(d.Path, dataLink))
		if lerr != nil {
			// Not a kubelet volume (or not there yet): read the files themselves.
			return readSnapshot(d.Path)
		}
		if target == d.target {
			return d.snap, nil
		}
		// Read through the resolved target, not through ..data, so that one snapshot never
		// mixes two versions if the kubelet swaps again while we read.
		dir := target
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(d.Path, target)
		}
		var snap Snapshot
		if snap, err = readSnapshot(dir); err == nil {
			d.target, d.snap = target, snap
			return snap, nil
		}
		if now, _ := os.Readlink(filepath.Join(d.Path, dataLink)); now == target {
			break // not a race: the Secret itself is wrong
		}
	}
	return Snapshot{}, err
}

func readSnapshot(dir string) (Snapshot, error) {
	read := func(key string, required bool) (string, error) {
		b, err := readFile(filepath.Join(dir, key))
		switch {
		case errors.Is(err, fs.ErrNotExist) && !required:
			return "", nil
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("%w: %s has no %q file: mount the grant's whole derived Secret (not a subPath) at --token-dir", ErrNoToken, dir, key)
		case err != nil:
			return "", fmt.Errorf("%w: reading %q in %s: %v", ErrNoToken, key, dir, pathless(err))
		}
		return strings.TrimSpace(string(b)), nil
	}
	var s Snapshot
	var err error
	if s.AccessToken, err = read(oauthv1alpha1.AccessTokenKey, true); err != nil {
		return Snapshot{}, err
	}
	if s.AccessToken == "" {
		return Snapshot{}, fmt.Errorf("%w: %q in %s is empty", ErrNoToken, oauthv1alpha1.AccessTokenKey, dir)
	}
	exp, err := read(oauthv1alpha1.ExpiryKey, true)
	if err != nil {
		return Snapshot{}, err
	}
	if s.Expiry, err = time.Parse(time.RFC3339, exp); err != nil {
		return Snapshot{}, fmt.Errorf("%w: %q in %s is not an RFC 3339 time", ErrNoToken, oauthv1alpha1.ExpiryKey, dir)
	}
	if s.TokenType, err = read(oauthv1alpha1.TokenTypeKey, false); err != nil {
		return Snapshot{}, err
	}
	if s.TokenType == "" {
		s.TokenType = "Bearer"
	}
	scope, err := read(ScopeKey, false)
	if err != nil {
		return Snapshot{}, err
	}
	if f := strings.Fields(scope); len(f) > 0 {
		s.Scopes = f
	}
	if s.Email, err = read(EmailKey, false); err != nil {
		return Snapshot{}, err
	}
	return s, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return b, nil
}

// pathless drops the path from *fs.PathError (the caller names the file already).
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
