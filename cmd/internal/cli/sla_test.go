package cli

import (
	"testing"
	"time"
)

func TestSLAWhenText(t *testing.T) {
	for _, tc := range []struct {
		left time.Duration
		want string
	}{
		{0, "0m ago"},
		{-30 * time.Second, "0m ago"},
		{12*time.Minute + 59*time.Second, "in 12m"},
		{-(2*time.Hour + 10*time.Minute), "2h10m ago"},
		{47*time.Hour + 5*time.Minute, "in 47h05m"},
		{-(3*24*time.Hour + 4*time.Hour + 59*time.Minute), "3d4h ago"},
	} {
		if got := whenText(tc.left); got != tc.want {
			t.Errorf("whenText(%v) = %q, want %q", tc.left, got, tc.want)
		}
	}
}
