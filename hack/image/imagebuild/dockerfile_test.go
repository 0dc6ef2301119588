package imagebuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// words splits a shell command line on spaces, keeping double-quoted parts together (enough
// for the Dockerfile's one build line).
func words(line string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range line {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// TestDockerfileBuildsWhatMakeImageBuilds: the Dockerfile (for users with Docker; no engine
// runs here) must build the same package with the same flags and produce the same kind of
// image as `make image`, and copy every directory the manager's packages live in.
func TestDockerfileBuildsWhatMakeImageBuilds(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var build []string
	var copied []string
	user, entrypoint := "", ""
	for _, line := range strings.Split(string(b), "\n") {
		f := words(strings.TrimSpace(line))
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "RUN":
			if i := slices.Index(f, "go"); i > 0 && len(f) > i+1 && f[i+1] == "build" {
				build = f[1:]
			}
		case "COPY":
			if len(f) == 3 && !strings.HasPrefix(f[1], "--") {
				copied = append(copied, strings.TrimSuffix(f[1], "/"))
			}
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entrypoint = strings.Join(f[1:], " ")
		}
	}
	if build == nil {
		t.Fatal("no `go build` line in the Dockerfile")
	}
	goAt := slices.Index(build, "go")
	env, args := build[:goAt], build[goAt+2:]
	for _, e := range BuildEnv {
		if !slices.Contains(env, e) {
			t.Errorf("Dockerfile builds without %s (make image sets it); its environment: %v", e, env)
		}
	}
	for _, e := range env {
		if !slices.Contains(BuildEnv, e) && !strings.HasPrefix(e, "GOOS=") && !strings.HasPrefix(e, "GOARCH=") {
			t.Errorf("Dockerfile sets %s, make image does not", e)
		}
	}
	var flags []string
	pkg := ""
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "-o":
			i++
		case strings.HasPrefix(args[i], "-"):
			flags = append(flags, args[i])
		default:
			pkg = args[i]
		}
	}
	if !slices.Equal(flags, BuildFlags) {
		t.Errorf("Dockerfile's go build flags %q differ from make image's %q", flags, BuildFlags)
	}
	if pkg != "./cmd/manager" {
		t.Errorf("Dockerfile builds %q, make image builds ./cmd/manager", pkg)
	}
	if user != NonRootUser {
		t.Errorf("Dockerfile USER %q, make image uses %s", user, NonRootUser)
	}
	if entrypoint != `[/manager]` {
		t.Errorf("Dockerfile ENTRYPOINT %s, make image uses [\"/manager\"]", entrypoint)
	}

	// Every directory of the module that the manager links must be copied into the builder.
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", root+"/cmd/manager").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, _ := filepath.Rel(root, dir)
		top := strings.Split(rel, string(filepath.Separator))[0]
		if !slices.Contains(copied, top) {
			t.Errorf("the manager links %s, but the Dockerfile does not COPY %s/", rel, top)
		}
	}
}
