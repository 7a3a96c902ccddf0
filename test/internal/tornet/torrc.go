package tornet

import (
	"fmt"
	"os"
	"path/filepath"
)

// nodeLines returns the torrc lines every tor started by the network has.
func (n *Network) nodeLines(dataDir string, ctlPort int) string {
	return fmt.Sprintf(`# Written by tornet: a private Tor test network on 127.0.0.1.
TestingTorNetwork 1
UseDefaultFallbackDirs 0
PathsNeededToBuildCircuits 0.67
TestingDirAuthVoteExit *
TestingDirAuthVoteHSDir *
TestingDirAuthVoteGuard *
TestingMinExitFlagThreshold 0
V3AuthNIntervalsValid 2
DataDirectory %s
ControlPort 127.0.0.1:%d
CookieAuthentication 1
ShutdownWaitLength 0
Log notice file %s
GeoIPFile %s
GeoIPv6File %s
%s`, dataDir, ctlPort, filepath.Join(dataDir, logName), n.empty, n.empty, n.dirLines)
}

// TorrcLines returns the torrc lines any further tor (a relay's, a CLI's, a
// client's) needs to join this network: TestingTorNetwork 1,
// UseDefaultFallbackDirs 0, PathsNeededToBuildCircuits 0.67, empty
// GeoIPFile and GeoIPv6File, and one DirAuthority line per authority. The
// caller adds its own DataDirectory, ports and services.
func (n *Network) TorrcLines() string {
	return fmt.Sprintf(`TestingTorNetwork 1
UseDefaultFallbackDirs 0
PathsNeededToBuildCircuits 0.67
GeoIPFile %s
GeoIPv6File %s
%s`, n.empty, n.empty, n.dirLines)
}

// WriteTorrc writes TorrcLines to a file with mode 0600 and returns its
// path, for a --torrc flag or bine's StartConf.TorrcFile. An empty path
// means a new file in the network's directory.
func (n *Network) WriteTorrc(path string) (string, error) {
	if path == "" {
		f, err := os.CreateTemp(n.dir, "torrc-*")
		if err != nil {
			return "", fmt.Errorf("tornet: %w", err)
		}
		path = f.Name()
		f.Close()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("tornet: writing a torrc: %w", err)
	}
	_, err = f.WriteString(n.TorrcLines())
	if err1 := f.Chmod(0o600); err == nil {
		err = err1
	}
	if err1 := f.Close(); err == nil {
		err = err1
	}
	if err != nil {
		return "", fmt.Errorf("tornet: writing a torrc: %w", err)
	}
	return filepath.Abs(path)
}
