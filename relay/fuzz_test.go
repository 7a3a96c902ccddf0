package relay

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/amana-relay/amana/relay/api"
)

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

func FuzzIdempotencyKey(f *testing.F) {
	for _, s := range []string{"", "0123456789abcdef", "0123456789abcde", strings.Repeat("a", 64), strings.Repeat("a", 65), "0123456789abcdef\n", "0123456789abcde\u00e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := &http.Request{Header: http.Header{api.IdempotencyHeader: {s}}}
		k, aerr := idempotencyKey(r)
		switch {
		case s == "":
			if k != "" || aerr != nil {
				t.Fatalf("no key gave %q, %v", k, aerr)
			}
		case aerr == nil:
			if k != s || len(k) < 16 || len(k) > 64 || strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
				t.Fatalf("idempotencyKey accepted %q as %q", s, k)
			}
		case k != "":
			t.Fatalf("idempotencyKey refused %q but returned %q", s, k)
		}
	})
}

func FuzzInboxQuery(f *testing.F) {
	id := strings.Repeat("0a", 16)
	for _, s := range []string{"", "after=", "after=" + id, "limit=1", "limit=1000", "limit=1001", "limit=0", "limit=01", "limit=-1",
		"after=" + id + "&limit=7", "after=" + strings.ToUpper(id), "after=%30a", "limit=1&limit=2", "after=%zz", "a=1;b=2", "limit=" + strings.Repeat("9", 30)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		after, limit, ok := parseInboxQuery(raw)
		if !ok {
			if after != "" || limit != 0 {
				t.Fatalf("parseInboxQuery(%q) refused but returned %q, %d", raw, after, limit)
			}
			return
		}
		if limit < 1 || limit > api.InboxPageMax || after != "" && !api.ValidID(after) {
			t.Fatalf("parseInboxQuery(%q) = %q, %d", raw, after, limit)
		}
		// What it accepted, written back as the client writes it, reads
		// the same.
		q := "limit=" + strconv.Itoa(limit)
		if after != "" {
			q = "after=" + after + "&" + q
		}
		if a, l, ok := parseInboxQuery(q); !ok || a != after || l != limit {
			t.Fatalf("parseInboxQuery(%q) = %q, %d, %v; from %q", q, a, l, ok, raw)
		}
	})
}

func FuzzEventQuery(f *testing.F) {
	key := strings.Repeat("Ab-_", 10) + "xyz"
	for _, s := range []string{"", "part=case", "category=sea&part=case", "category=&part=facts", "part=share&to=" + key,
		"part=share", "part=case&to=" + key, "part=case&part=facts", "category=a&category=b&part=case", "part=share&to=" + key + "=",
		"part=share&to=" + key + "&to=" + key, "part=%zz", "category=%E2%80%AEsea&part=case", "part=CASE", "a=1;part=case"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		eq, ok := parseEventQuery(raw)
		if !ok {
			if eq != (eventQuery{}) {
				t.Fatalf("parseEventQuery(%q) refused but returned %+v", raw, eq)
			}
			return
		}
		if _, known := eventKinds[eq.part]; !known || (eq.part == api.PartShare) != (eq.to != "") ||
			eq.to != "" && !validKeyID(eq.to) || len(eq.category) > maxCategoryLen {
			t.Fatalf("parseEventQuery(%q) = %+v", raw, eq)
		}
		// What it accepted, written as the client writes it, reads the same.
		q := "category=" + url.QueryEscape(eq.category) + "&part=" + eq.part
		if eq.to != "" {
			q += "&to=" + eq.to
		}
		if back, ok := parseEventQuery(q); !ok || back != eq {
			t.Fatalf("parseEventQuery(%q) = %+v, %v; from %q", q, back, ok, raw)
		}
	})
}

func FuzzAckBatch(f *testing.F) {
	id := strings.Repeat("0a", 16)
	for _, s := range []string{`{"ids":["` + id + `"]}`, `{"ids":[]}`, `{}`, `{"ids":["` + id + `","` + id + `"]}`,
		`{"ids":["` + id + `"]} x`, `{"IDS":["` + id + `"]}`, `{"ids":null}`, ` {"ids" : [ "` + id + `" ] } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, ok := parseAckBatch(body)
		if !ok {
			if ids != nil {
				t.Fatalf("refused but returned %d IDs", len(ids))
			}
			return
		}
		if len(ids) < 1 || len(ids) > api.MaxAckBatch {
			t.Fatalf("%d IDs", len(ids))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if !api.ValidID(id) || seen[id] {
				t.Fatalf("accepted %q", id)
			}
			seen[id] = true
		}
		// What it accepted, encoded as the client encodes it, reads the same.
		b, _ := json.Marshal(api.AckBatch{IDs: ids})
		if again, ok := parseAckBatch(b); !ok || !slices.Equal(again, ids) {
			t.Fatalf("re-encoded %s reads %v, %v", b, again, ok)
		}
	})
}
