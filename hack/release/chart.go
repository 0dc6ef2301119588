package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// stageChart copies the chart at src to dst with the release's version (Chart.yaml's
// version without the v, appVersion with it: the image tag) and the released images as
// the defaults in values.yaml; nothing else changes.
func stageChart(src, dst, version, imageRepo, metadataImageRepo string) error {
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return err
	}
	edit := func(file string, edits ...[2]string) error {
		p := filepath.Join(dst, file)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := string(b)
		for _, e := range edits {
			re := regexp.MustCompile(e[0])
			if len(re.FindAllStringIndex(s, -1)) != 1 {
				return fmt.Errorf("%s: want exactly one line matching %q", file, e[0])
			}
			s = re.ReplaceAllLiteralString(s, e[1])
		}
		return os.WriteFile(p, []byte(s), 0o644)
	}
	if err := edit("Chart.yaml",
		[2]string{`(?m)^version: .*$`, "version: " + strings.TrimPrefix(version, "v")},
		[2]string{`(?m)^appVersion: .*$`, fmt.Sprintf("appVersion: %q", version)}); err != nil {
		return err
	}
	if err := edit("values.yaml",
		[2]string{`(?m)^  repository: grantkeeper$`, "  repository: " + imageRepo},
		[2]string{`(?m)^    repository: grantkeeper-metadata-server$`, "    repository: " + metadataImageRepo}); err != nil {
		return err
	}
	// The same modes in every checkout (os.CopyFS keeps the source's, which the umask set).
	return filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(p, 0o644)
	})
}
