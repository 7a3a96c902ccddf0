package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/evidence"
)

// TestMetadataNotChecked: without exiftool (or bubblewrap) show still
// reads every attachment through, and says what it could not check and
// how to install the tools.
func TestMetadataNotChecked(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	e := &env{ctx: context.Background()}
	m := e.newMetadataMeter()
	if m.missing == nil {
		t.Fatal("exiftool found with an empty PATH")
	}
	r := strings.NewReader("the attachment")
	if lines, err := m.read(e.ctx, r, 14); err != nil || lines != nil || r.Len() != 0 {
		t.Fatalf("read: %v %v, %d bytes unread", lines, err, r.Len())
	}
	var b bytes.Buffer
	m.summary(&b)
	for _, want := range []string{"metadata: NOT checked (", "GPS positions, device makes and models, owner and author names,\ncreation times and software in these files could not be checked",
		"hint: apt-get install libimage-exiftool-perl mat2 bubblewrap"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

// TestMetadataLines: what exiftool read is the submitter's, and is printed
// escaped; at most four values per kind.
func TestMetadataLines(t *testing.T) {
	md := &evidence.Metadata{Findings: []evidence.Finding{
		{Kind: evidence.KindPerson, Tag: "IFD0:Artist", Value: "Jane\x1b[2J\u202eRoe"},
		{Kind: evidence.KindLocation, Tag: "GPS:GPSLatitude", Value: "1"},
		{Kind: evidence.KindLocation, Tag: "GPS:GPSLongitude", Value: "2"},
		{Kind: evidence.KindLocation, Tag: "GPS:GPSAltitude", Value: "3"},
		{Kind: evidence.KindLocation, Tag: "Composite:GPSPosition", Value: "1 2"},
		{Kind: evidence.KindLocation, Tag: "XMP:City", Value: "Tyre"},
	}}
	got := strings.Join(metadataLines(md), "\n")
	if strings.ContainsAny(got, "\x1b\u202e") {
		t.Errorf("control characters reach the terminal: %q", got)
	}
	if !strings.Contains(got, "reveals location: 1 (GPS:GPSLatitude); 2 (GPS:GPSLongitude); 3 (GPS:GPSAltitude); 1 2 (Composite:GPSPosition); and 1 more") {
		t.Errorf("location line: %s", got)
	}
	if !strings.Contains(got, "reveals names: Jane") {
		t.Errorf("names line: %s", got)
	}
	if got := metadataLines(&evidence.Metadata{}); len(got) != 1 || !strings.Contains(got[0], "exiftool found no location") {
		t.Errorf("no findings: %v", got)
	}
}

func TestParseCustodyLog(t *testing.T) {
	id, err := crypto.GenerateIdentity("alice", false)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := crypto.GenerateIdentity("mallory", false)
	const cas = "0123456789abcdef0123456789abcdef"
	event := func(who *crypto.Identity, c, action string) string {
		e := &crypto.Event{Desk: "d", Case: c, CaseSHA256: strings.Repeat("ab", 32), Seq: 1, Clock: 1, Time: "2026-12-04T01:00:00Z",
			Change: crypto.Change{Custody: &crypto.Custody{Action: action}}}
		if err := crypto.SignEvent(e, who); err != nil {
			t.Fatal(err)
		}
		b, _ := crypto.MarshalEvent(e)
		return string(b)
	}
	log := func(evs ...string) []byte {
		return []byte(`{"schema":"amana-custody/v1","desk":"d","case":"` + cas + `","handlers":[],"events":[` + strings.Join(evs, ",\n") + "]}\n")
	}
	key := id.SigningKey().Public().(ed25519.PublicKey)
	good := event(id, cas, crypto.CustodyEvidenceExport)
	if n, err := parseCustodyLog(log(event(other, cas, crypto.CustodyDecrypt), good), key); err != nil || n != 2 {
		t.Fatalf("a good log: %d %v", n, err)
	}
	for name, data := range map[string][]byte{
		"no bundle event":             log(event(id, cas, crypto.CustodyDecrypt)),
		"bundle event by another key": log(event(other, cas, crypto.CustodyEvidenceExport)),
		"another case":                log(good, event(id, strings.Repeat("f", 32), crypto.CustodyExport)),
		"a byte changed":              log(strings.Replace(good, `"d"`, `"e"`, 1)),
		"not a log":                   []byte(`{"schema":"x"}`),
		"not JSON":                    []byte(`[`),
	} {
		if _, err := parseCustodyLog(data, key); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseCustodyLog(f *testing.F) {
	f.Add([]byte(`{"schema":"amana-custody/v1","case":"0123456789abcdef0123456789abcdef","events":[]}`))
	f.Add([]byte(`{"schema":"amana-custody/v1","events":[{"schema":"amana-event/v1"}]}`))
	key := make(ed25519.PublicKey, ed25519.PublicKeySize)
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := parseCustodyLog(b, key); err == nil && n == 0 {
			t.Fatal("a log without an event signed by the key is accepted")
		}
	})
}

// TestWriteJSONEscapesC1: --json output carries no raw C1 control (CSI
// U+009B among them), and still decodes to the same text.
func TestWriteJSONEscapesC1(t *testing.T) {
	in := map[string]string{"v": "a\u009b31mred\u0085é\u00a0ü"}
	var b bytes.Buffer
	if err := writeJSON(&b, in); err != nil {
		t.Fatal(err)
	}
	for r := rune(0x80); r <= 0x9f; r++ {
		if strings.ContainsRune(b.String(), r) {
			t.Errorf("raw U+%04X in %q", r, b.String())
		}
	}
	if !strings.Contains(b.String(), `\u009b31mred\u0085é`) {
		t.Errorf("not escaped: %q", b.String())
	}
	var out map[string]string
	if err := json.Unmarshal(b.Bytes(), &out); err != nil || out["v"] != in["v"] {
		t.Errorf("decodes to %q, %v", out["v"], err)
	}
}
