package crypto

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fuzz targets cover every parser in this package. Their seed corpus is
// the committed test vectors plus testdata/fuzz/<target>/. CI runs each
// briefly (make fuzz-short); make fuzz runs them longer.

func vectorBodies(f *testing.F, kind string) {
	files, _ := filepath.Glob("testdata/vectors/*.txt")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		v, err := parseVector(filepath.Base(p), data)
		if err != nil {
			f.Fatal(err)
		}
		switch {
		case kind == "card" && v.get("card") != "":
			f.Add([]byte(v.get("card")))
		case kind == "auth" && v.get("authorization") != "":
			f.Add([]byte(v.get("authorization")))
		case kind == "body-sha256" && v.get("body-sha256") != "":
			f.Add([]byte(v.get("body-sha256")))
		case kind == v.get("kind"):
			f.Add(v.body)
		}
	}
}

func FuzzParseCard(f *testing.F) {
	vectorBodies(f, "card")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCard(string(b))
		if err != nil {
			return
		}
		again, err := ParseCard(c.String())
		if err != nil || again.String() != c.String() {
			t.Fatalf("card does not round-trip: %v", err)
		}
	})
}

func FuzzOpenManifest(f *testing.F) {
	vectorBodies(f, "manifest")
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _, err := OpenManifest(b, nil)
		if err != nil {
			return
		}
		if len(m.Cards()) != len(m.Handlers) {
			t.Fatal("cards and handlers disagree")
		}
		for _, c := range m.Categories {
			if _, err := m.Route(c.ID); err != nil {
				t.Fatal(err)
			}
			if m.CategoryTitle(c.ID, "ar") == "" {
				t.Fatal("a category without a title to show")
			}
		}
		if r, err := m.Route(""); err != nil || len(r) == 0 {
			t.Fatalf("no route for a report without a category: %v", err)
		}
		if m.TitleIn("ar") == "" {
			t.Fatal("a desk without a title to show")
		}
	})
}

func FuzzParseRequestAuth(f *testing.F) {
	vectorBodies(f, "auth")
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseRequestAuth(string(b))
		if err != nil {
			return
		}
		again := fmt.Sprintf("%s key=%s,ts=%d,nonce=%s,sig=%s", RequestScheme, a.KeyID, a.Time, a.Nonce, b64.EncodeToString(a.Sig))
		if again != string(b) {
			t.Fatalf("ParseRequestAuth accepted a non-canonical header %q", b)
		}
		a.Verify("GET", "/", [32]byte{})
	})
}

func FuzzParseBodySHA256(f *testing.F) {
	vectorBodies(f, "body-sha256")
	f.Fuzz(func(t *testing.T, b []byte) {
		sum, err := ParseBodySHA256(string(b))
		if err != nil {
			return
		}
		if hex.EncodeToString(sum[:]) != string(b) {
			t.Fatalf("ParseBodySHA256 accepted a non-canonical hash %q", b)
		}
	})
}

func FuzzDecodeLookupToken(f *testing.F) {
	for _, s := range []string{"", strings.Repeat("A", 43), strings.Repeat("A", 43) + "=", strings.Repeat("A", 42) + "B",
		"+/+/", "a\x00", strings.Repeat("0", 41) + "\r00", strings.Repeat("0", 42) + "\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, ok := DecodeLookupToken(s)
		if !ok {
			return
		}
		if len(b) != 32 || base64.RawURLEncoding.EncodeToString(b) != s {
			t.Fatalf("DecodeLookupToken(%q) accepted a non-canonical token", s)
		}
	})
}

func FuzzBundleReader(f *testing.F) {
	// The vectors seed every member: client, kind status and survey, bad
	// scores; these add the no-JavaScript survey with a comment.
	vectorBodies(f, "bundle")
	for _, js := range []string{
		`{"schema":1,"desk":"d","category":"","language":"","submitted":"","sealed_by":"server","answers":[{"field":"satisfaction","value":"5"},{"field":"comment","value":"ok"}],"attachments":[],"reply_recipient":"","mailbox":"","seq":1,"kind":"survey"}`,
		`{"schema":1,"desk":"d","category":"","language":"","submitted":"","sealed_by":"client","answers":[],"attachments":[],"reply_recipient":"","mailbox":"","client":"cli"}`,
	} {
		b := entryBytes(reportName, []byte(js))
		b = append(b, make([]byte, 1024)...)
		f.Add(append(b, make([]byte, PaddedSize(int64(len(b)))-int64(len(b)))...))
	}
	// An attachment without its sha256, client-sealed (opens) and
	// relay-sealed (refused).
	for _, by := range []string{"client", "server"} {
		f.Add(rawBundle(`{"schema":1,"desk":"d","category":"","language":"","submitted":"","sealed_by":"`+by+`","answers":[],"attachments":[{"name":"x.txt","size":5,"type":"text/plain"}],"reply_recipient":"","mailbox":""}`, []byte("hello")))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		br, err := NewBundleReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		// What is read keeps the member rules.
		r := br.Report()
		if err := r.CheckMembers(); err != nil {
			t.Fatal(err)
		}
		if r.Kind == KindSurvey {
			score, comment, err := ParseSurvey(r)
			if err != nil || score < 1 || score > 5 || len(comment) > MaxSurveyComment {
				t.Fatalf("survey read: %d %q %v", score, comment, err)
			}
			if a, err := SurveyAnswers(score, comment); err != nil || len(a) != len(r.Answers) || a[len(a)-1] != r.Answers[len(a)-1] {
				t.Fatalf("survey does not round-trip: %v", err)
			}
		}
		for i := 0; i <= MaxAttachments+1; i++ {
			a, rd, err := br.Next()
			if err != nil {
				return
			}
			listed := a.SHA256
			if listed == "" && r.SealedBy != SealedByClient {
				t.Fatalf("an attachment without sha256 accepted in an item sealed by %q", r.SealedBy)
			}
			h := sha256.New()
			if _, err := io.Copy(h, rd); err != nil {
				return
			}
			// Read through, an attachment has its bytes' SHA-256: the
			// listed one, or the one the reader computed.
			if got := hex.EncodeToString(h.Sum(nil)); a.SHA256 != got || a.Computed != (listed == "") {
				t.Fatalf("attachment read with sha256 %q (listed %q, computed %v), bytes %s", a.SHA256, listed, a.Computed, got)
			}
		}
		t.Fatal("more attachments than the limit")
	})
}

func FuzzReadAgeHeader(f *testing.F) {
	vectorBodies(f, "sealed")
	f.Add([]byte("age-encryption.org/v1\n-> X25519 AAAA\n\n--- AAAA\n"))
	// A few of the CCTV age vectors (testdata/cctv): valid, grease, invalid
	// points, odd stanzas.
	for _, name := range []string{"x25519", "x25519_grease", "hybrid_grease", "x25519_low_order",
		"hybrid_identity", "stanza_valid_characters", "stanza_empty_body", "scrypt", "x25519_long_file_key"} {
		b, err := os.ReadFile(filepath.Join("testdata", "cctv", "age", name))
		if err != nil {
			f.Fatal(err)
		}
		_, file, _ := bytes.Cut(b, []byte("\n\n"))
		f.Add(file)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadAgeHeader(bufio.NewReader(bytes.NewReader(b)), MaxHeaderLen(4))
		if err != nil {
			return
		}
		if h.Len > len(b) || h.Len > MaxHeaderLen(4) || len(h.Types) == 0 || h.Grease > MaxGrease {
			t.Fatalf("header of %d bytes with %d stanzas and %d grease from %d bytes", h.Len, len(h.Types), h.Grease, len(b))
		}
	})
}

func FuzzParseIdentityFile(f *testing.F) {
	f.Add([]byte("# name: alice\n" + testClassicSecret + "\n"))
	f.Add([]byte("# name: alice\n" + testPQSecret + "\n"))
	f.Add([]byte("-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParseIdentityFile(b, func() (string, error) { return "x", nil })
		if err != nil {
			return
		}
		if _, err := ParseCard(id.Card().String()); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseReceipt(f *testing.F) {
	f.Add("mechanic way able advice core action blossom three animal expect segment wool")
	f.Add("MECH-WAY-ABLE-ADVI-CORE-ACTI-BLOS-THRE-ANIM-EXPE-SEGM-WOOL")
	f.Add("one two")
	f.Add("18376 05782 00256 86289 48226 43777 05542 78385 96771")
	f.Add("١٨٣٧٦-٠٥٧٨٢-٠٠٢٥٦-٨٦٢٨٩-٤٨٢٢٦-٤٣٧٧٧-٠٥٥٤٢-٧٨٣٨٥-٩٦٧٧١")
	f.Add("\u200f۱۸۳۷۶ ۰۵۷۸۲ ۰۰۲۵۶ ۸۶۲۸۹ 48226 43777 05542 78385 96771\u200e")
	f.Add("34028 23669 20938 46346 33746 07431 76821 14556 47771")
	f.Add("34028 23669 20938 46346 33746 07431 76821 14566 47777")
	f.Add("18376 05782 mechanic")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReceipt(s)
		if err != nil {
			return
		}
		again, err := ParseReceipt(r.Words())
		if err != nil || again.Words() != r.Words() {
			t.Fatalf("receipt does not round-trip: %v", err)
		}
		byDigits, err := ParseReceipt(r.Digits())
		if err != nil || byDigits.entropy != r.entropy {
			t.Fatalf("receipt does not round-trip through its digits: %v", err)
		}
	})
}
