package layering

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// adminCheckName matches the names of hand-written admin checks
// (requireAdmin, checkAdmin, mustAdmin, isAdmin), not longer names that
// merely start alike (ensureAdminUser, isAdminScreen).
var adminCheckName = regexp.MustCompile(`(?i)^(require|check|must|is)_?admins?$`)

// checker type-checks the module's packages from the compiler's export
// data of their dependencies (go list -export), so that a selector is
// known to be a core.Actor's field whatever its variable is called.
type checker struct {
	mod     string
	fset    *token.FileSet
	imports types.Importer
}

func newChecker(t *testing.T) *checker {
	t.Helper()
	mod := modulePath(t)
	exports := map[string]string{}
	for _, line := range goList(t, "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}", mod+"/...") {
		pkg, file, _ := strings.Cut(line, "\t")
		if file != "" {
			exports[pkg] = file
		}
	}
	fset := token.NewFileSet()
	lookup := func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	}
	return &checker{mod: mod, fset: fset, imports: importer.ForCompiler(fset, "gc", lookup)}
}

// adminChecks type-checks one package's files and returns where they
// decide by an actor's admin flag: reading core.Actor's Admin field, or
// declaring a requireAdmin-style function.
func (c *checker) adminChecks(path string, files []*ast.File) ([]string, error) {
	conf := types.Config{Importer: c.imports, FakeImportC: true}
	info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
	if _, err := conf.Check(path, c.fset, files, info); err != nil {
		return nil, err
	}
	actor := c.mod + "/services/core.Actor"
	var found []string
	for _, f := range files {
		written := map[*ast.SelectorExpr]bool{} // building an actor is no decision
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				for _, l := range n.Lhs {
					if s, ok := l.(*ast.SelectorExpr); ok {
						written[s] = true
					}
				}
			case *ast.FuncDecl:
				if adminCheckName.MatchString(n.Name.Name) {
					found = append(found, fmt.Sprintf("%s: func %s", c.fset.Position(n.Pos()), n.Name.Name))
				}
			case *ast.SelectorExpr:
				sel, ok := info.Selections[n]
				if !ok || sel.Kind() != types.FieldVal || n.Sel.Name != "Admin" || written[n] {
					return true
				}
				recv := sel.Recv()
				if p, ok := recv.(*types.Pointer); ok {
					recv = p.Elem()
				}
				if named, ok := recv.(*types.Named); ok && named.Obj().Pkg() != nil &&
					named.Obj().Pkg().Path()+"."+named.Obj().Name() == actor {
					found = append(found, fmt.Sprintf("%s: %s", c.fset.Position(n.Pos()), types.ExprString(n)))
				}
			}
			return true
		})
	}
	return found, nil
}

// TestNoAdminChecksOutsideCore: who may do what is decided in core
// (issue 12). Outside services/core no code reads a core.Actor's Admin
// flag or has a requireAdmin of its own: front ends ask core
// (AuthorizeAdmin, the operations that check themselves), and show admin
// views by Actor.IsAdministrator. Test files may build admins freely.
func TestNoAdminChecksOutsideCore(t *testing.T) {
	c := newChecker(t)
	var offenders []string
	for _, line := range goList(t, "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \",\"}},{{join .CgoFiles \",\"}}", c.mod+"/...") {
		fields := strings.Split(line, "\t")
		pkg, dir := fields[0], fields[1]
		rel := strings.TrimPrefix(pkg, c.mod+"/")
		if under(rel, "services/core") {
			continue
		}
		var files []*ast.File
		for _, name := range strings.Split(fields[2], ",") {
			if name == "" {
				continue
			}
			f, err := parser.ParseFile(c.fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		if len(files) == 0 {
			continue
		}
		found, err := c.adminChecks(pkg, files)
		if err != nil {
			t.Fatalf("type-check %s: %v", rel, err)
		}
		offenders = append(offenders, found...)
	}
	slices.Sort(offenders)
	if len(offenders) > 0 {
		t.Errorf("admin checks outside services/core; make them core decisions "+
			"(core.AuthorizeAdmin, a core operation, or Actor.IsAdministrator for what is shown):\n  %s",
			strings.Join(offenders, "\n  "))
	}
}

// The search finds what it is meant to, whatever the variable's name and
// through pointers and struct fields, and leaves writes alone.
func TestAdminCheckSearchFindsChecks(t *testing.T) {
	c := newChecker(t)
	src := `package p

import "` + c.mod + `/services/core"

type screen struct{ who *core.Actor }

func requireAdmin(x core.Actor) bool { return x.Admin }

func (s screen) keys() bool { return s.who.Admin }

func build(id core.ID) core.Actor {
	var b core.Actor
	b.Admin = true
	return core.Actor{UserID: id, Admin: b.IsAdministrator()}
}
`
	f, err := parser.ParseFile(c.fset, "planted.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	found, err := c.adminChecks("example.com/p", []*ast.File{f})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"func requireAdmin", "x.Admin", "s.who.Admin"}
	if len(found) != len(want) {
		t.Fatalf("found %q, want %q", found, want)
	}
	for i, w := range want {
		if !strings.HasSuffix(found[i], w) {
			t.Errorf("finding %d: %q, want …%q", i, found[i], w)
		}
	}
}
