//go:build linux

package cases

import "testing"

func TestSyncfsReportsErrors(t *testing.T) {
	for _, c := range []struct {
		release string
		want    bool
	}{
		{"6.18.44-fc-v1252", true},
		{"5.8.0", true},
		{"5.8", true},
		{"5.10.0-28-amd64", true},
		{"5.15.0-91-generic", true},
		{"10.0.1", true},
		{"5.7.19", false},
		{"5.4.0-150-generic", false},
		{"4.19.0-26-amd64", false},
		{"3.10.0-1160.el7.x86_64", false},
		{"5", false},
		{"", false},
		{"x.y", false},
		{"5.x", false},
	} {
		if got := syncfsReportsErrors(c.release); got != c.want {
			t.Errorf("syncfsReportsErrors(%q) = %v, want %v", c.release, got, c.want)
		}
	}
}
