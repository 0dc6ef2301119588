// Package docs checks the documentation against the repository: every relative link and
// anchor in the Markdown files resolves, every condition reason the API declares has a
// troubleshooting entry, and the changelog's newest version is the chart's.
package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// markdownFiles are the repository's tracked *.md files (not what tests write elsewhere).
func markdownFiles(t *testing.T, root string) []string {
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard", "*.md").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var files []string
	for _, f := range strings.Fields(string(out)) {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatal("no Markdown files found")
	}
	return files
}

var (
	fence   = regexp.MustCompile("(?s)```.*?```")
	code    = regexp.MustCompile("``[^\n]*?``|`[^`\n]*`")
	link    = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	heading = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)
	htmlID  = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
)

// anchors are the GitHub anchors of a Markdown file's headings: lower case, punctuation
// other than - and _ dropped, spaces as -, repeats numbered -1, -2, ...
func anchors(md string) map[string]bool {
	md = fence.ReplaceAllString(md, "")
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(md, -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	for _, m := range htmlID.FindAllStringSubmatch(md, -1) {
		out[m[1]] = true
	}
	return out
}

// TestRelativeLinksResolve: a link to a file that moved, or to a heading that was renamed,
// fails here rather than in a reader's browser.
func TestRelativeLinksResolve(t *testing.T) {
	root := repoRoot(t)
	cache := map[string]map[string]bool{}
	anchorsOf := func(file string) map[string]bool {
		if a, ok := cache[file]; ok {
			return a
		}
		b, _ := os.ReadFile(file)
		cache[file] = anchors(string(b))
		return cache[file]
	}
	checked := 0
	for _, f := range markdownFiles(t, root) {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		text := code.ReplaceAllString(fence.ReplaceAllString(string(b), ""), "")
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			file := filepath.Join(root, f)
			if path != "" {
				file = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s: link %q: %s does not exist", f, target, path)
					continue
				}
			}
			checked++
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(file, ".md") {
				continue // a line anchor in a source file
			}
			if !anchorsOf(file)[anchor] {
				t.Errorf("%s: link %q: no heading with anchor #%s in %s", f, target, anchor, filepath.Base(file))
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d relative links checked: the link pattern is broken", checked)
	}
}

// apiReasons are the condition reasons api/v1alpha1 declares (constants named Reason*).
func apiReasons(t *testing.T, root string) []string {
	pkgs, err := parser.ParseDir(token.NewFileSet(), filepath.Join(root, "api", "v1alpha1"), func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, s := range g.Specs {
					v := s.(*ast.ValueSpec)
					for i, n := range v.Names {
						if strings.HasPrefix(n.Name, "Reason") && i < len(v.Values) {
							if lit, ok := v.Values[i].(*ast.BasicLit); ok {
								s, _ := strconv.Unquote(lit.Value)
								out = append(out, s)
							}
						}
					}
				}
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("found only %d reasons in api/v1alpha1: %v", len(out), out)
	}
	return out
}

// TestEveryReasonHasATroubleshootingEntry: docs/troubleshooting.md has a heading named
// after each reason the API declares, so `kubectl get` output leads to what to do.
func TestEveryReasonHasATroubleshootingEntry(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "docs", "troubleshooting.md"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(string(b), -1) {
		for _, w := range strings.FieldsFunc(m[1], func(r rune) bool { return r == '`' || r == ',' || r == ' ' || r == '/' }) {
			have[w] = true
		}
	}
	for _, r := range apiReasons(t, root) {
		if !have[r] {
			t.Errorf("docs/troubleshooting.md has no heading for reason %s", r)
		}
	}
}

var (
	releaseHeading = regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+[^\]]*)\] - \d{4}-\d{2}-\d{2}$`)
	chartVersion   = regexp.MustCompile(`(?m)^version: (\S+)$`)
	appVersion     = regexp.MustCompile(`(?m)^appVersion: "?v?([^"\s]+)"?$`)
)

// TestChangelogAgreesWithChart: the chart's version (and appVersion) is the changelog's
// newest release, and every release has an upgrade note.
func TestChangelogAgreesWithChart(t *testing.T) {
	root := repoRoot(t)
	cl, err := os.ReadFile(filepath.Join(root, "CHANGELOG.md"))
	if err != nil {
		t.Fatal(err)
	}
	chart, err := os.ReadFile(filepath.Join(root, "charts", "grantkeeper", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rel := releaseHeading.FindAllStringSubmatchIndex(string(cl), -1)
	if len(rel) == 0 {
		t.Fatal("CHANGELOG.md has no release heading like ## [0.1.0] - 2026-11-21")
	}
	newest := string(cl)[rel[0][2]:rel[0][3]]
	if m := chartVersion.FindSubmatch(chart); m == nil || string(m[1]) != newest {
		t.Errorf("Chart.yaml version %q, CHANGELOG.md's newest release %s", m, newest)
	}
	if m := appVersion.FindSubmatch(chart); m == nil || string(m[1]) != newest {
		t.Errorf("Chart.yaml appVersion %q, CHANGELOG.md's newest release %s", m, newest)
	}
	for i, r := range rel {
		end := len(cl)
		if i+1 < len(rel) {
			end = rel[i+1][0]
		}
		if !strings.Contains(string(cl[r[0]:end]), "### Upgrading") {
			t.Errorf("CHANGELOG.md: release %s has no ### Upgrading note", cl[r[2]:r[3]])
		}
		if !strings.Contains(string(cl), "["+string(cl[r[2]:r[3]])+"]: ") {
			t.Errorf("CHANGELOG.md: release %s has no link reference", cl[r[2]:r[3]])
		}
	}
}
