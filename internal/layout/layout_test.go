package layout

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README's import map from go list")

const (
	begin = "<!-- imports: written by `go test ./internal/layout -update`, checked by the same test -->\n```\n"
	end   = "```\n<!-- /imports -->"
)

// importMap is, for every non-test package of the module, the module's
// packages it imports directly, one line each, in go list's order.
func importMap(t *testing.T, root string) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Module.Path}}\t{{join .Imports \" \"}}", "./...")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		name    string
		imports []string
	}
	var pkgs []pkg
	width := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("go list line %q", line)
		}
		mod := f[1] + "/"
		name := strings.TrimPrefix(f[0], mod)
		if name == "internal/layout" {
			continue
		}
		var imps []string
		for _, imp := range strings.Fields(f[2]) {
			if strings.HasPrefix(imp, mod) {
				imps = append(imps, strings.TrimPrefix(imp, mod))
			}
		}
		sort.Strings(imps)
		pkgs = append(pkgs, pkg{name, imps})
		width = max(width, len(name))
	}
	var b strings.Builder
	for _, p := range pkgs {
		imps := "(nothing of the module)"
		if len(p.imports) > 0 {
			imps = strings.Join(p.imports, ", ")
		}
		b.WriteString(p.name + strings.Repeat(" ", width-len(p.name)) + "  → " + imps + "\n")
	}
	return b.String()
}

// TestReadmeImportMap: README's import map is what go list reports.
func TestReadmeImportMap(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(root, "README.md")
	src, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(src, []byte(begin))
	j := bytes.Index(src, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("README.md has no import map between %q and %q", begin, end)
	}
	have := string(src[i+len(begin) : j])
	want := importMap(t, root)
	if have == want {
		return
	}
	if *update {
		out := append(append(append([]byte{}, src[:i+len(begin)]...), want...), src[j:]...)
		if err := os.WriteFile(readme, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's import map is stale; run go test ./internal/layout -update\nhave:\n%swant:\n%s", have, want)
}

// TestReadmeDescribesEveryPackage: the map's first block, one sentence per
// package, names every package of the module (commands may be described
// with the package that holds them).
func TestReadmeDescribesEveryPackage(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const section = "## How the code is laid out\n\n```\n"
	i := bytes.Index(src, []byte(section))
	if i < 0 {
		t.Fatalf("README.md has no %q section", strings.TrimSpace(section))
	}
	block := string(src[i+len(section):])
	block = block[:strings.Index(block, "```")]
	described := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			described[f[0]] = true
		}
	}
	for _, line := range strings.Split(importMap(t, root), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || described[f[0]] || strings.Contains(f[0], "/cmd/") {
			continue
		}
		t.Errorf("README's package list does not describe %s", f[0])
	}
}
