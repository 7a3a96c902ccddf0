package ui

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at release builds with
// -ldflags "-X github.com/amana-relay/amana/cmd/internal/ui.version=v1.2.3".
var version string

// Version describes this build: the release version when 'make release'
// set one, the module version otherwise, and the commit and Go version from
// the build information.
func Version() string {
	v := version
	var rev, dirty string
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		return fmt.Sprintf("%s (commit %s%s, %s)", v, rev, dirty, runtime.Version())
	}
	return fmt.Sprintf("%s (%s)", v, runtime.Version())
}
