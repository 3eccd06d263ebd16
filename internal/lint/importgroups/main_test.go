package main

import (
	"strings"
	"testing"
)

func TestCheckFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		imports string
		want    []string // the paths reported, in order
	}{
		{name: "stdlib only", imports: "\"fmt\"\n\"os\""},
		{name: "others only", imports: "\"github.com/a/b\"\n\"example.com/c\""},
		{name: "two groups", imports: "\"fmt\"\n\n\"github.com/a/b\""},
		{name: "three groups", imports: "\"fmt\"\n\n\"github.com/a/b\"\n\n\"github.com/piot-appliance/piot/x\""},
		{name: "commented import keeps its group", imports: "\"fmt\"\n\n// why\n\"github.com/a/b\""},
		{name: "named and blank imports", imports: "\"fmt\"\n\n_ \"embed.example/x\"\nalias \"github.com/a/b\""},
		{
			name:    "module import among stdlib",
			imports: "\"fmt\"\n\"github.com/piot-appliance/piot/x\"\n\"os\"\n\n\"github.com/a/b\"",
			want:    []string{"github.com/piot-appliance/piot/x"},
		},
		{
			name:    "stdlib in the second group",
			imports: "\"net\"\n\n\"github.com/a/b\"\n\"strings\"",
			want:    []string{"strings"},
		},
		{
			name:    "stdlib after others only",
			imports: "\"github.com/a/b\"\n\n\"fmt\"",
			want:    []string{"fmt"},
		},
		{
			name:    "one mixed group",
			imports: "\"fmt\"\n\"github.com/a/b\"",
			want:    []string{"github.com/a/b"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "package p\n\nimport (\n" + tc.imports + "\n)\n"
			problems, err := checkFile("p.go", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != len(tc.want) {
				t.Fatalf("got %q, want reports for %q", problems, tc.want)
			}
			for i, path := range tc.want {
				if !strings.Contains(problems[i], `"`+path+`"`) {
					t.Errorf("report %d = %q, want it about %q", i, problems[i], path)
				}
			}
		})
	}
}

func TestCheckFileIgnoresSingleImports(t *testing.T) {
	src := "package p\n\nimport \"github.com/a/b\"\nimport \"fmt\"\n"
	problems, err := checkFile("p.go", []byte(src))
	if err != nil || len(problems) != 0 {
		t.Fatalf("got %q, %v; want nothing", problems, err)
	}
}

func TestIsStdlib(t *testing.T) {
	for path, want := range map[string]bool{
		"fmt":                              true,
		"net/http/httptest":                true,
		"C":                                true,
		"github.com/piot-appliance/piot/x": false,
		"go.etcd.io/bbolt":                 false,
		"golang.org/x/sys/unix":            false,
	} {
		if got := isStdlib(path); got != want {
			t.Errorf("isStdlib(%q) = %v, want %v", path, got, want)
		}
	}
}
