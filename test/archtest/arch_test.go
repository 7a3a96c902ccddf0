// Package archtest checks the shape of the module: which packages may
// import which, and that every package says what it is for.
package archtest

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath string
	Doc        string
	Deps       []string
	Imports    []string
	Name       string
}

func packages(t *testing.T) map[string]*pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "-deps=false", "github.com/amana-relay/amana/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	all := map[string]*pkg{}
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		all[strings.TrimPrefix(p.ImportPath, "github.com/amana-relay/amana/")] = &p
	}
	return all
}

const mod = "github.com/amana-relay/amana/"

// forbidden lists, for each package, import path prefixes it must never
// depend on, directly or not.
var forbidden = map[string][]string{
	"crypto":           {"net", "crypto/tls", mod + "store", mod + "relay", mod + "onion", mod + "cmd", "go.etcd.io/bbolt", "github.com/cretz/bine"},
	"store":            {"net", "crypto/tls", mod + "crypto", mod + "relay", mod + "onion", mod + "cmd", "filippo.io/age", "github.com/cretz/bine"},
	"store/cases":      {"net", mod + "crypto", mod + "relay", mod + "onion", mod + "cmd", "filippo.io/age", "go.etcd.io/bbolt"},
	"relay":            {mod + "cmd", mod + "relay/client", "github.com/spf13/cobra", "github.com/cretz/bine"},
	"relay/api":        {mod + "crypto", mod + "store", "net"},
	"relay/client":     {mod + "relay\x00", mod + "store\x00", mod + "cmd", "go.etcd.io/bbolt"},
	"cmd/internal/cli": {mod + "relay\x00", mod + "store\x00", "go.etcd.io/bbolt"},
}

func TestImportDirections(t *testing.T) {
	all := packages(t)
	for name, bad := range forbidden {
		p, ok := all[name]
		if !ok {
			t.Errorf("package %s is missing", name)
			continue
		}
		for _, dep := range p.Deps {
			for _, b := range bad {
				exact := strings.HasSuffix(b, "\x00")
				b = strings.TrimSuffix(b, "\x00")
				if dep == b || !exact && strings.HasPrefix(dep, b+"/") {
					t.Errorf("%s depends on %s, which it must not", name, dep)
				}
			}
		}
	}
}

// TestHarnessesStayInTest: what exists only to exercise the product lives
// under test/, and no package of the product depends on it, so a harness
// (a private Tor network, a process runner, a load generator) can never
// end up in a released binary or decide how the product behaves. Go's own
// rule keeps test/internal to test/.
func TestHarnessesStayInTest(t *testing.T) {
	for name, p := range packages(t) {
		if strings.HasPrefix(name, "test/") {
			continue
		}
		for _, dep := range p.Deps {
			if strings.HasPrefix(dep, mod+"test/") {
				t.Errorf("%s depends on %s: the product must not depend on test harnesses", name, dep)
			}
		}
	}
}

// TestBineOnlyInOnion: only package onion may use bine or talk to tor.
func TestBineOnlyInOnion(t *testing.T) {
	for name, p := range packages(t) {
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, "github.com/cretz/bine") && name != "onion" {
				t.Errorf("%s imports %s; only package onion may", name, imp)
			}
		}
	}
}

func TestPackageDocs(t *testing.T) {
	for name, p := range packages(t) {
		if p.Name == "main" {
			continue
		}
		if len(strings.TrimSpace(p.Doc)) < 20 {
			t.Errorf("package %s has no doc comment saying what it owns", name)
		}
	}
}
