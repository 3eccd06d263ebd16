// Command importgroups checks that every Go file keeps its standard library
// imports in the first group and everything else (third-party packages and
// this module) after a blank line, in one group or in several.
//
// Usage: go run ./internal/lint/importgroups [file or directory ...]
//
// With no arguments it checks the current directory. It prints one line per
// misplaced import and exits 1 when there is any; gofmt cannot fix this, so
// the fix is to move the line to the right group by hand.
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	roots := os.Args[1:]
	if len(roots) == 0 {
		roots = []string{"."}
	}
	var problems []string
	for _, root := range roots {
		found, err := checkTree(root)
		if err != nil {
			fmt.Fprintln(os.Stderr, "importgroups:", err)
			os.Exit(2)
		}
		problems = append(problems, found...)
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}

// checkTree checks every .go file below root, skipping the directories the
// go command ignores too (testdata, vendor, and names starting with . or _).
func checkTree(root string) ([]string, error) {
	var problems []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found, err := checkFile(path, src)
		if err != nil {
			return err
		}
		problems = append(problems, found...)
		return nil
	})
	return problems, err
}

func skipDir(name string) bool {
	return name == "testdata" || name == "vendor" || name == "node_modules" ||
		strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// checkFile reports each import of src that stands in the wrong group. A
// group is a run of import lines without a blank line between them; only
// the parenthesised import declarations are looked at, and each of them on
// its own.
func checkFile(filename string, src []byte) ([]string, error) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, filename, src, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.IMPORT || !gen.Lparen.IsValid() {
			continue
		}
		for _, imp := range misplaced(fset, gen.Specs) {
			path := importPath(imp)
			where := "a later group"
			if isStdlib(path) {
				where = "the first group"
			}
			problems = append(problems, fmt.Sprintf("%s: import %q belongs in %s",
				fset.Position(imp.Pos()), path, where))
		}
	}
	return problems, nil
}

// misplaced returns the imports of one declaration that break the rule: no
// standard library import after the first group, and no other import in a
// first group that holds the standard library. A first group without any
// standard library import (a file importing only other packages) is fine.
func misplaced(fset *token.FileSet, specs []ast.Spec) []*ast.ImportSpec {
	var bad []*ast.ImportSpec
	for i, group := range groups(fset, specs) {
		firstHasStdlib := i == 0 && slices.ContainsFunc(group, isStdlibImport)
		for _, imp := range group {
			if std := isStdlibImport(imp); (i > 0 && std) || (firstHasStdlib && !std) {
				bad = append(bad, imp)
			}
		}
	}
	return bad
}

// groups splits specs where a blank line stands between two imports; a
// comment above an import belongs to it.
func groups(fset *token.FileSet, specs []ast.Spec) [][]*ast.ImportSpec {
	var all [][]*ast.ImportSpec
	lastLine := 0
	for i, spec := range specs {
		imp := spec.(*ast.ImportSpec)
		start := imp.Pos()
		if imp.Doc != nil {
			start = imp.Doc.Pos()
		}
		if i == 0 || fset.Position(start).Line > lastLine+1 {
			all = append(all, nil)
		}
		all[len(all)-1] = append(all[len(all)-1], imp)
		lastLine = fset.Position(imp.End()).Line
	}
	return all
}

func isStdlibImport(imp *ast.ImportSpec) bool {
	return isStdlib(importPath(imp))
}

func importPath(imp *ast.ImportSpec) string {
	return strings.Trim(imp.Path.Value, "`\"")
}

// isStdlib reports whether path names a standard library package, the way
// goimports tells them apart: its first element has no dot. The module's own
// path (github.com/...) and every third-party one have a dot there.
func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}
