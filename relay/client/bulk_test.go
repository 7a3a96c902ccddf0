package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/amana-relay/amana/relay/api"
)

var bulkIDs = []string{strings.Repeat("0a", 16), strings.Repeat("0b", 16), strings.Repeat("0c", 16)}

func bulkAnswer(bodies ...string) string {
	var b strings.Builder
	b.WriteString(api.BulkMagic)
	for i, body := range bodies {
		if body == "-" {
			fmt.Fprintf(&b, "%s -\n", bulkIDs[i])
			continue
		}
		fmt.Fprintf(&b, "%s %d\n%s", bulkIDs[i], len(body), body)
	}
	b.WriteString("end\n")
	return b.String()
}

// TestReadBulk: a well-formed answer gives each body whole and the missing
// IDs; answers for other IDs or sizes, cut short or not ended are refused.
func TestReadBulk(t *testing.T) {
	sizes := []int64{3, 0, 5}
	var got []string
	missing, err := readBulk(strings.NewReader(bulkAnswer("abc", "-", "defgh")), bulkIDs, sizes, func(i int, r io.Reader) error {
		b, _ := io.ReadAll(r)
		got = append(got, fmt.Sprint(i, string(b)))
		return nil
	})
	if err != nil || len(missing) != 1 || missing[0] != bulkIDs[1] || strings.Join(got, ",") != "0abc,2defgh" {
		t.Fatalf("%v %v %v", missing, got, err)
	}
	var ne *NetError
	for name, ans := range map[string]string{
		"wrong size":  bulkAnswer("abcd", "-", "defgh"),
		"no magic":    strings.TrimPrefix(bulkAnswer("abc", "-", "defgh"), api.BulkMagic),
		"not ended":   strings.TrimSuffix(bulkAnswer("abc", "-", "defgh"), "end\n") + "more\n",
		"other order": strings.Replace(bulkAnswer("abc", "-", "defgh"), bulkIDs[0], bulkIDs[2], 1),
		"long line":   api.BulkMagic + strings.Repeat("x", 5000),
	} {
		if _, err := readBulk(strings.NewReader(ans), bulkIDs, sizes, func(int, io.Reader) error { return nil }); !errors.Is(err, ErrBulkAnswer) {
			t.Errorf("%s: %v", name, err)
		}
	}
	full := bulkAnswer("abc", "-", "defgh")
	if _, err := readBulk(strings.NewReader(full[:len(full)-9]), bulkIDs, sizes, func(int, io.Reader) error { return nil }); !errors.As(err, &ne) {
		t.Errorf("cut short: %v", err)
	}
}

func FuzzReadBulk(f *testing.F) {
	f.Add([]byte(bulkAnswer("abc", "-", "defgh")), int64(3), int64(0), int64(5))
	f.Add([]byte(bulkAnswer("-", "-", "-")), int64(0), int64(0), int64(0))
	f.Add([]byte(api.BulkMagic+bulkIDs[0]+" 03\nabc"), int64(3), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, ans []byte, s0, s1, s2 int64) {
		sizes := []int64{s0, s1, s2}
		var total int64
		missing, err := readBulk(bytes.NewReader(ans), bulkIDs, sizes, func(i int, r io.Reader) error {
			n, err := io.Copy(io.Discard, r)
			if n > sizes[i] || n > api.BulkMaxItem {
				t.Fatalf("item %d gave %d bytes, announced %d", i, n, sizes[i])
			}
			total += n
			return err
		})
		if total > int64(len(ans)) {
			t.Fatalf("%d bytes from an answer of %d", total, len(ans))
		}
		if err == nil && len(missing) > len(bulkIDs) {
			t.Fatalf("%d missing", len(missing))
		}
	})
}
