// Package secretvolume writes a directory the way the kubelet publishes and updates a Secret
// volume (its AtomicWriter): the data goes into a new timestamped directory, the symlink
// ..data is swapped to it with an atomic rename, each key is a symlink through ..data, and
// the previous directory is removed. Tests use it to update a mounted Secret exactly as a
// Pod sees it, without a kubelet.
package secretvolume

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

const dataLink = "..data"

// Write publishes data (key -> content) in dir, replacing what was there atomically.
func Write(dir string, data map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	ts, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return err
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(ts, k), v, 0o644); err != nil {
			return err
		}
	}
	tmp := filepath.Join(dir, dataLink+"_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
		return err
	}
	for k := range data {
		link := filepath.Join(dir, k)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join(dataLink, k), link); err != nil {
				return err
			}
		}
	}
	// Keys that went away lose their symlinks, as with the kubelet.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if name := e.Name(); !strings.HasPrefix(name, "..") {
			if _, ok := data[name]; !ok {
				_ = os.Remove(filepath.Join(dir, name))
			}
		}
	}
	if old != "" {
		return os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}
