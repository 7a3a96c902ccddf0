package relay

import "testing"

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-", "bytes=10-20", "bytes=-5", "bytes=5-1", "bytes=0-0,2-3", "items=1-2", "bytes=99999999999999999999-"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		start, end, partial, ok := parseRange(h, size)
		if !ok {
			return
		}
		if start < 0 || end > size || start > end || (!partial && (start != 0 || end != size)) {
			t.Fatalf("parseRange(%q, %d) = %d, %d, %v", h, size, start, end, partial)
		}
	})
}

func FuzzParseOffset(f *testing.F) {
	for _, s := range []string{"0", "42", "-1", "+1", "01", "9223372036854775807", "9223372036854775808", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := parseOffset(s); ok && n < 0 {
			t.Fatalf("parseOffset(%q) = %d", s, n)
		}
	})
}
