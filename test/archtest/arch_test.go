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

// rule is an import a package must never depend on, directly or not, and
// why. A path ending in "\x00" matches exactly; otherwise it matches the
// package and everything under it.
type rule struct{ path, why string }

// forbidden lists, for each package, the rules it must keep.
var forbidden = map[string][]rule{
	"crypto": {
		{"net", "keys and formats are the same offline: crypto does no I/O over a network"},
		{"crypto/tls", "crypto does no I/O over a network"},
		{mod + "store", "formats know nothing of how the relay stores them"},
		{mod + "relay", "formats know nothing of HTTP"},
		{mod + "onion", "formats know nothing of Tor"},
		{mod + "cmd", "libraries never depend on the programs"},
		{mod + "handler", "the shared formats belong to no side"},
		{"go.etcd.io/bbolt", "formats know nothing of the spool"},
		{"github.com/cretz/bine", "only onion talks to tor"},
		{mod + "relay/daemon", "formats know nothing of the running relay"},
	},
	"store": {
		{"net", "the spool is storage only: it knows nothing of the network"},
		{"crypto/tls", "the spool knows nothing of the network"},
		{mod + "crypto", "the spool treats ciphertext as opaque bytes and never parses it"},
		{mod + "relay", "the spool knows nothing of HTTP"},
		{mod + "onion", "the spool knows nothing of Tor"},
		{mod + "cmd", "libraries never depend on the programs"},
		{mod + "handler", "the relay's storage and the handler's side never meet"},
		{"filippo.io/age", "the spool never decrypts anything"},
		{"github.com/cretz/bine", "only onion talks to tor"},
		{mod + "relay/daemon", "the daemon opens the spool; the spool never knows who runs it"},
	},
	"handler/cases": {
		{"net", "the case store is local files: it never talks to a relay"},
		{mod + "crypto", "the case store holds ciphertext and never opens it"},
		{mod + "relay", "the case store knows nothing of HTTP"},
		{mod + "onion", "the case store knows nothing of Tor"},
		{mod + "cmd", "libraries never depend on the programs"},
		{mod + "store\x00", "the handler's store is not the relay's spool"},
		{"filippo.io/age", "the case store never decrypts anything"},
		{"go.etcd.io/bbolt", "the case store is plain files"},
	},
	"handler": {
		{mod + "relay\x00", "the handler's side talks to a relay only through relay/client, as a remote party"},
		{mod + "store\x00", "the handler's side never opens the relay's spool"},
		{mod + "cmd", "libraries never depend on the programs"},
		{"go.etcd.io/bbolt", "the handler's side keeps cases as plain files"},
	},
	"relay": {
		{mod + "cmd", "libraries never depend on the programs"},
		{mod + "relay/client", "the server does not use its own client"},
		{mod + "handler", "the relay never holds the handler's side: no case store, no handler key"},
		{"github.com/spf13/cobra", "the server is a library: flags belong to the program"},
		{"github.com/cretz/bine", "only onion talks to tor"},
		{mod + "relay/daemon", "the daemon runs the server; the server takes a listener and never knows what runs it"},
	},
	"relay/daemon": {
		{mod + "cmd", "the daemon is a library: flags, hints and exit codes belong to the program, which explains the daemon's typed errors"},
		{"github.com/spf13/cobra", "the daemon takes a Config; flags belong to the program"},
		{mod + "handler", "the running relay never holds the handler's side: no case store, no handler key"},
	},
	"relay/api": {
		{mod + "crypto", "wire types are plain data"},
		{mod + "store", "wire types are plain data"},
		{"net", "wire types are plain data"},
		{mod + "relay/daemon", "wire types are plain data"},
	},
	"relay/client": {
		{mod + "relay\x00", "the client speaks the wire format only, so it cannot lean on server internals"},
		{mod + "store\x00", "the client never opens the relay's spool"},
		{mod + "handler", "the client is a pure HTTP client: it keeps nothing on disk"},
		{mod + "cmd", "libraries never depend on the programs"},
		{"go.etcd.io/bbolt", "the client keeps nothing on disk"},
		{mod + "relay/daemon", "the client reaches a running relay only over HTTP, as a remote party"},
	},
	"cmd/internal/cli": {
		{mod + "relay\x00", "amana reaches a relay only over its API, as any client would"},
		{mod + "store\x00", "amana never opens a relay's spool"},
		{"go.etcd.io/bbolt", "amana never opens a relay's spool"},
	},
}

func TestImportDirections(t *testing.T) {
	all := packages(t)
	for name, rules := range forbidden {
		p, ok := all[name]
		if !ok {
			t.Errorf("package %s is missing", name)
			continue
		}
		for _, dep := range p.Deps {
			for _, r := range rules {
				b, exact := strings.CutSuffix(r.path, "\x00")
				if dep == b || !exact && strings.HasPrefix(dep, b+"/") {
					t.Errorf("%s depends on %s, which it must not: %s", name, dep, r.why)
				}
			}
		}
	}
}

// TestHarnessesStayInTest: what exists only to exercise the product lives
// under test/, and no package of the product depends on it, so a harness
// (a private Tor network, a process runner, a load generator) can never
// end up in a released binary or decide how the product behaves. Go's own
// rule keeps test/internal to test/. relay/relaytest, the in-process test
// relay, sits beside the relay so that any package's tests can use it, and
// only tests may.
func TestHarnessesStayInTest(t *testing.T) {
	for name, p := range packages(t) {
		if strings.HasPrefix(name, "test/") {
			continue
		}
		for _, dep := range p.Deps {
			if strings.HasPrefix(dep, mod+"test/") || dep == mod+"relay/relaytest" {
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
