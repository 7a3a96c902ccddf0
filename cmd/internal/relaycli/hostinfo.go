package relaycli

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"time"
)

// Parsers of what the host says about itself, for 'amana-relay doctor'.
// Each takes the bytes of one file (or a program's output) and never fails
// on malformed input: it skips what it cannot read.

// swapArea is one line of /proc/swaps.
type swapArea struct {
	Name string // the device or file, as the kernel names it
	Type string // "partition" or "file"
}

// parseSwaps reads /proc/swaps.
func parseSwaps(b []byte) []swapArea {
	var out []swapArea
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		// The kernel escapes spaces in names as \040.
		out = append(out, swapArea{Name: strings.ReplaceAll(f[0], `\040`, " "), Type: f[1]})
	}
	return out
}

// parseListeners reads /proc/net/tcp or /proc/net/tcp6 and returns the
// addresses of the sockets in the LISTEN state.
func parseListeners(b []byte) []net.TCPAddr {
	var out []net.TCPAddr
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		hostHex, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		raw, err := hex.DecodeString(hostHex)
		if err != nil || (len(raw) != 4 && len(raw) != 16) {
			continue
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			continue
		}
		// The kernel prints the address as 32-bit words in host order
		// (little-endian on the machines we run on).
		ip := make(net.IP, len(raw))
		for i := 0; i < len(raw); i += 4 {
			ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
		}
		out = append(out, net.TCPAddr{IP: ip, Port: int(port)})
	}
	return out
}

// parseTorVersion reads the first line of 'tor --version' ("Tor version
// 0.4.9.11.") and returns the version's numbers.
func parseTorVersion(b []byte) ([]int, bool) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("Tor version "))
	if !ok {
		return nil, false
	}
	v, _, _ := bytes.Cut(rest, []byte(" "))
	v = bytes.TrimSuffix(v, []byte("."))
	var nums []int
	for _, p := range strings.Split(string(v), ".") {
		p, _, _ = strings.Cut(p, "-") // 0.4.9.2-alpha
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 1<<20 {
			return nil, false
		}
		nums = append(nums, n)
	}
	if len(nums) < 3 {
		return nil, false
	}
	return nums, true
}

// versionAtLeast compares dotted version numbers.
func versionAtLeast(v, min []int) bool {
	for i := range min {
		if i >= len(v) {
			return false
		}
		if v[i] != min[i] {
			return v[i] > min[i]
		}
	}
	return true
}

// parseConsensusTimes reads the valid-after and valid-until lines of a
// cached tor consensus.
func parseConsensusTimes(b []byte) (after, until time.Time, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for n := 0; sc.Scan() && n < 64; n++ { // both are in the first lines
		key, val, _ := strings.Cut(sc.Text(), " ")
		t, err := time.Parse(time.DateTime, val)
		if err != nil {
			continue
		}
		switch key {
		case "valid-after":
			after = t
		case "valid-until":
			until = t
		}
	}
	return after, until, !after.IsZero() && !until.IsZero() && !until.Before(after)
}

// parseCoreLimit reads /proc/PID/limits and returns the soft limit on core
// files in bytes; -1 for unlimited.
func parseCoreLimit(b []byte) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Max core file size")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		if f[0] == "unlimited" {
			return -1, true
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		return n, err == nil && n >= 0
	}
	return 0, false
}

// sshdSetting returns the value the first occurrence of key has in an
// sshd_config (sshd uses the first), and whether it is there. Match blocks
// end the search: what follows applies only to some connections.
func sshdSetting(b []byte, key string) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(strings.Replace(line, "=", " ", 1))
		if len(f) < 2 {
			continue
		}
		if strings.EqualFold(f[0], "Match") {
			return "", false
		}
		if strings.EqualFold(f[0], key) {
			return strings.ToLower(f[1]), true
		}
	}
	return "", false
}

// aptSetting reads key in an apt configuration file
// (APT::Periodic::Unattended-Upgrade "1";): whether it is on ("1" or
// "true"), and whether the file sets it at all.
func aptSetting(b []byte, key string) (on, found bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, key)
		if !ok {
			continue
		}
		v := strings.Trim(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), ";")), `"`)
		on, found = v == "1" || strings.EqualFold(v, "true"), true
	}
	return on, found
}
