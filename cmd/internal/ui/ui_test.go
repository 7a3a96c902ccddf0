package ui

import (
	"testing"
	"time"
)

func TestSizeFlag(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0"},
		{512, "512"},
		{1 << 10, "1KiB"},
		{1536, "1536"},
		{1<<20 + 1<<10, "1025KiB"},
		{64 << 20, "64MiB"},
		{128 << 20, "128MiB"},
		{2 << 30, "2GiB"},
		{10 << 30, "10GiB"},
		{3 << 40, "3TiB"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			got := SizeFlag(tc.n)
			if got != tc.want {
				t.Fatalf("SizeFlag(%d) = %q, want %q", tc.n, got, tc.want)
			}
			if back, err := ParseSize(got); err != nil || back != tc.n {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", got, back, err, tc.n)
			}
		})
	}
}

func TestDurationFlag(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{time.Second, "1s"},
		{90 * time.Second, "90s"},
		{time.Minute, "1m"},
		{10 * time.Minute, "10m"},
		{90 * time.Minute, "90m"},
		{time.Hour, "1h"},
		{6 * time.Hour, "6h"},
		{24 * time.Hour, "24h"},
		{1500 * time.Millisecond, "1.5s"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			got := DurationFlag(tc.d)
			if got != tc.want {
				t.Fatalf("DurationFlag(%v) = %q, want %q", tc.d, got, tc.want)
			}
			if back, err := ParseDuration(got); err != nil || back != tc.d {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", got, back, err, tc.d)
			}
		})
	}
}
