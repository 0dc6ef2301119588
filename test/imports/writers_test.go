package imports

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Issue 33: one writer per object. A grant's status is written in exactly one place
// (controllers/grant_report.go writeStatus: the reconciler's; the receiver and the consent callback
// record facts in Secrets instead), and a grant's derived Secret is written only by
// internal/derivedsecret. The shipped packages are type-checked (export data from `go list
// -export`), so a call is found whatever the variable is named.

// grantStatusWriters are the functions allowed to write a grant's status (either kind, or
// through the oauthv1alpha1.Grant interface).
var grantStatusWriters = []string{"controllers.(*GrantReconciler).writeStatus"}

// otherSecretWriters are the functions outside internal/derivedsecret that write Secrets,
// each of them one that is never a grant's derived Secret.
var otherSecretWriters = []string{
	"grantinputs.(*Reader).WriteBack", // the user's refresh-token Secret (a rotated token)
	"consent.(*Store).Save",           // the consent-link record (create and update)
	"consent.StoreRefreshToken",       // the refresh-token Secret a consent fills
	"consent.(*SecretKey).load",       // the consent-link signing key Secret (grantkeeper-consent-key)
	"webhookcert.(*Rotator).pass",     // the webhook's serving certificate
}

// shipped are the packages whose writes count: what the binaries link of this module.
var shipped = []string{"./api/...", "./controllers/...", "./internal/...", "./cmd/..."}

// write is one call of Create, Update or Patch (on a client or on its status writer).
type write struct {
	fn     string // the enclosing function, as package.(Receiver).Name
	status bool   // through .Status()
	obj    string // the object argument's type
	pos    string
}

func TestOneWriterPerGrantStatusAndDerivedSecret(t *testing.T) {
	readSources(t)
	writes, refs := scanWrites(t)
	var status, secrets []string
	for _, w := range writes {
		switch {
		case w.status && (strings.HasSuffix(w.obj, "v1alpha1.GoogleOAuthGrant") || strings.HasSuffix(w.obj, "v1alpha1.OAuthGrant") || strings.HasSuffix(w.obj, "v1alpha1.Grant")):
			if !slices.Contains(status, w.fn) { // one function may write in two ways (an update, a patch on conflict)
				status = append(status, w.fn)
			}
		case !w.status && strings.HasSuffix(w.obj, "k8s.io/api/core/v1.Secret") && !strings.HasPrefix(w.fn, "derivedsecret."):
			secrets = append(secrets, w.fn)
		}
	}
	if len(writes) < 10 {
		t.Fatalf("found only %d writes: the check would be vacuous", len(writes))
	}
	if !slices.Equal(status, grantStatusWriters) {
		t.Errorf("grant status writers = %v, want exactly %v (other actors record a fact the reconciler watches)", status, grantStatusWriters)
	}
	for _, fn := range secrets {
		if !slices.Contains(otherSecretWriters, fn) {
			t.Errorf("%s writes a Secret outside internal/derivedsecret: if it is a derived Secret, write it through derivedsecret; if not, add it to otherSecretWriters saying which Secret it is", fn)
		}
	}
	// The derived Secret's shape is derivedsecret's: nobody else builds one to write.
	for _, r := range refs {
		t.Errorf("%s uses derivedsecret.%s: only internal/derivedsecret shapes and writes a derived Secret", r.pos, r.obj)
	}
}

// scanWrites type-checks the shipped packages and returns their Create/Update/Patch calls,
// and the references outside internal/derivedsecret to what shapes a derived Secret.
func scanWrites(t *testing.T) (writes, refs []write) {
	t.Helper()
	// -race -trimpath: the export data of make test's own compiles (its vet and go test use
	// these flags); without them, on an empty build cache, this compiled every shipped
	// package and dependency again.
	args := append([]string{"list", "-race", "-trimpath", "-export", "-deps", "-json=ImportPath,Dir,GoFiles,Export,Standard,DepOnly"}, shipped...)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export: %v", err)
	}
	type pkg struct {
		ImportPath, Dir, Export string
		GoFiles                 []string
		Standard, DepOnly       bool
	}
	exports := map[string]string{}
	var mine []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		if !p.DepOnly && strings.HasPrefix(p.ImportPath, module+"/") {
			mine = append(mine, p)
		}
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		if f := exports[path]; f != "" {
			return os.Open(f)
		}
		return nil, fmt.Errorf("no export data for %s", path)
	})
	for _, p := range mine {
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{}}
		conf := types.Config{Importer: imp}
		if _, err := conf.Check(p.ImportPath, fset, files, info); err != nil {
			t.Fatalf("type-checking %s: %v", p.ImportPath, err)
		}
		short := p.ImportPath[strings.LastIndex(p.ImportPath, "/")+1:]
		for _, f := range files {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				fn := short + "." + funcName(fd)
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					switch n := n.(type) {
					case *ast.CallExpr:
						if w, ok := writeCall(info, n); ok {
							w.fn, w.pos = fn, fset.Position(n.Pos()).String()
							writes = append(writes, w)
						}
					case *ast.SelectorExpr:
						if o := info.Uses[n.Sel]; o != nil && o.Pkg() != nil && o.Pkg().Path() == module+"/internal/derivedsecret" &&
							short != "derivedsecret" && slices.Contains([]string{"Apply", "Data", "WithdrawnReasonAnnotation", "WithdrawnMessageAnnotation", "RefreshedAtAnnotation"}, o.Name()) {
							refs = append(refs, write{fn: fn, obj: o.Name(), pos: fset.Position(n.Pos()).String()})
						}
					}
					return true
				})
			}
		}
	}
	return writes, refs
}

// writeCall recognizes x.Create/Update/Patch(ctx, obj, ...) and x.Status().Update/Patch(...)
// of controller-runtime's client (any receiver with such a method and an object argument).
func writeCall(info *types.Info, call *ast.CallExpr) (write, bool) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || len(call.Args) < 2 || !slices.Contains([]string{"Create", "Update", "Patch"}, sel.Sel.Name) {
		return write{}, false
	}
	tv, ok := info.Types[call.Args[1]]
	if !ok {
		return write{}, false
	}
	w := write{obj: strings.TrimPrefix(tv.Type.String(), "*")}
	if inner, ok := sel.X.(*ast.CallExpr); ok {
		if s, ok := inner.Fun.(*ast.SelectorExpr); ok && (s.Sel.Name == "Status" || s.Sel.Name == "SubResource") {
			w.status = true
		}
	}
	return w, true
}

func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	var recv string
	switch t := fd.Recv.List[0].Type.(type) {
	case *ast.StarExpr:
		if id, ok := t.X.(*ast.Ident); ok {
			recv = "*" + id.Name
		} else if ix, ok := t.X.(*ast.IndexExpr); ok {
			recv = "*" + ix.X.(*ast.Ident).Name
		}
	case *ast.Ident:
		recv = t.Name
	}
	return "(" + recv + ")." + fd.Name.Name
}
