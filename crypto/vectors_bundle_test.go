package crypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"
)

type bundleInput struct {
	Report Report `json:"report"`
	Files  []struct {
		Name    string `json:"name"`
		Type    string `json:"type"`
		Content string `json:"content_base64"`
		// Unhashed: sealed as amana submit seals a file (OpenFile), its
		// sha256 left out of report.json.
		Unhashed bool `json:"unhashed,omitempty"`
	} `json:"files"`
}

func (in *bundleInput) build() (*Report, []File) {
	r := in.Report
	var files []File
	for _, f := range in.Files {
		c, _ := base64.StdEncoding.DecodeString(f.Content)
		sum := sha256.Sum256(c)
		a := Attachment{Name: f.Name, Size: int64(len(c)), SHA256: hex.EncodeToString(sum[:]), Type: f.Type}
		if f.Unhashed {
			a.SHA256 = ""
		}
		files = append(files, File{Attachment: a, Body: bytes.NewReader(c)})
	}
	return &r, files
}

// readAll reads a bundle plaintext completely and returns the report and
// the attachments' contents.
func readAll(r io.Reader) (*Report, [][]byte, error) {
	br, err := NewBundleReader(r)
	if err != nil {
		return nil, nil, err
	}
	var out [][]byte
	for {
		a, rd, err := br.Next()
		if err == io.EOF {
			return br.Report(), out, nil
		}
		if err != nil {
			return nil, nil, err
		}
		listed := a.SHA256
		b, err := io.ReadAll(rd)
		if err != nil {
			return nil, nil, err
		}
		// Read to its end, every attachment has the SHA-256 of its bytes:
		// the one report.json gave (checked), or the one the reader
		// computed when it gave none.
		sum := sha256.Sum256(b)
		if a.SHA256 != hex.EncodeToString(sum[:]) || a.Computed != (listed == "") {
			return nil, nil, fmt.Errorf("attachment %q: sha256 %q computed %v after reading, want the bytes' %x", a.Name, a.SHA256, a.Computed, sum)
		}
		out = append(out, b)
	}
}

func checkPaddingVector(t *testing.T, v *vector) {
	for _, line := range strings.Split(strings.TrimSpace(string(v.body)), "\n") {
		f := strings.Fields(line)
		n, _ := strconv.ParseInt(f[0], 10, 64)
		padme, _ := strconv.ParseInt(f[1], 10, 64)
		padded, _ := strconv.ParseInt(f[2], 10, 64)
		if got := Padme(n); got != padme {
			t.Errorf("Padme(%d) = %d, want %d", n, got, padme)
		}
		if got := PaddedSize(n); got != padded {
			t.Errorf("PaddedSize(%d) = %d, want %d", n, got, padded)
		}
	}
}

func checkBundleVector(t *testing.T, v *vector) {
	want := v.get("expect")
	if in := v.get("input"); in != "" {
		var bi bundleInput
		if err := json.Unmarshal([]byte(in), &bi); err != nil {
			t.Fatal(err)
		}
		r, files := bi.build()
		var buf bytes.Buffer
		if _, err := WriteBundle(&buf, r, files); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), v.body) {
			t.Fatalf("WriteBundle output differs from the vector (%d vs %d bytes)", buf.Len(), len(v.body))
		}
	}
	r, files, err := readAll(bytes.NewReader(v.body))
	if want != "ok" {
		if got := errorCode(err); got != want {
			t.Fatalf("error %v (%s), want %s", err, got, want)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(len(files)); got != v.get("attachments") {
		t.Errorf("%s attachments, want %s", got, v.get("attachments"))
	}
	if r.Desk != v.get("desk") {
		t.Errorf("desk %q, want %q", r.Desk, v.get("desk"))
	}
}

func checkSealedVector(t *testing.T, v *vector) {
	id, err := NewIdentity("h", v.get("identity"))
	if err != nil {
		t.Fatal(err)
	}
	dr, err := age.Decrypt(bytes.NewReader(v.body), id.Age())
	var plain []byte
	if err == nil {
		plain, err = io.ReadAll(dr)
	}
	if want := v.get("expect"); want != "ok" {
		// "corrupt": age itself must refuse the file; no plaintext is trusted.
		if err == nil {
			t.Fatalf("corrupted file decrypted, want an age error")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(plain)
	if got := hex.EncodeToString(sum[:]); got != v.get("plaintext-sha256") {
		t.Errorf("plaintext sha256 %s, want %s", got, v.get("plaintext-sha256"))
	}
	if _, _, err := readAll(bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
}

const basicInput = `{"report":{"desk":"helpdesk","category":"sea","language":"ar","submitted":"2026-11-25T11:00:00Z","sealed_by":"client","answers":[{"field":"message","value":"وصف ما حدث <b>&amp;</b>\nline two"},{"field":"contact","value":""}],"reply_recipient":"","mailbox":""},"files":[{"name":"صورة 1.jpg","type":"image/jpeg","content_base64":"/9j/4AAQSkZJRgABAQ=="},{"name":"../../etc/passwd","type":"text/plain","content_base64":"aGVsbG8K"}]}`

func addBundle(t *testing.T, file, desc, input, attachments string) {
	var bi bundleInput
	if err := json.Unmarshal([]byte(input), &bi); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	r, files := bi.build()
	if _, err := WriteBundle(&b, r, files); err != nil {
		t.Fatal(err)
	}
	v := &vector{}
	v.set("kind", "bundle")
	v.set("description", desc)
	v.set("input", input)
	v.set("expect", "ok")
	v.set("desk", "helpdesk")
	v.set("attachments", attachments)
	v.body = b.Bytes()
	writeVector(t, file, v)
}

func sealedVector(t *testing.T, file string, id *Identity, secret string, plain []byte, expect string) {
	path := filepath.Join("testdata/vectors", file)
	if _, err := os.Stat(path); err == nil {
		return // random: keep the committed one
	}
	var ct bytes.Buffer
	w, err := age.Encrypt(&ct, mustRecipient(t, id))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	sum := sha256.Sum256(plain)
	v := &vector{}
	v.set("kind", "sealed")
	v.set("identity", secret)
	v.set("expect", expect)
	v.set("plaintext-sha256", hex.EncodeToString(sum[:]))
	v.body = ct.Bytes()
	writeVector(t, file, v)
	// A corrupted copy: one payload byte flipped near the end.
	bad := bytes.Clone(ct.Bytes())
	bad[len(bad)-20] ^= 1
	cv := &vector{}
	cv.set("kind", "sealed")
	cv.set("description", "one ciphertext byte flipped")
	cv.set("identity", secret)
	cv.set("expect", "corrupt")
	cv.body = bad
	writeVector(t, strings.Replace(file, "sealed-", "sealed-corrupt-", 1), cv)
}

func mustRecipient(t *testing.T, id *Identity) age.Recipient {
	r, err := id.Card().AgeRecipient()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type badBundle struct {
	name, desc, expect string
	body               []byte
}

// badBundles crafts hostile plaintexts by hand.
func badBundles(good []byte) []badBundle {
	rep := []byte(`{"schema":1,"desk":"helpdesk","category":"","language":"","submitted":"2026-11-25T11:00:00Z","sealed_by":"client","answers":[],"attachments":[{"name":"x","size":5,"sha256":"` +
		hex.EncodeToString(sha256.New().Sum(nil)) + `","type":"text/plain"}],"reply_recipient":"","mailbox":""}`)
	entry := func(name string, content []byte) []byte {
		b := tarHeader(name, int64(len(content)))
		b = append(b, content...)
		return append(b, make([]byte, roundBlock(int64(len(content)))-int64(len(content)))...)
	}
	finish := func(b []byte) []byte {
		b = append(b, make([]byte, 1024)...)
		return append(b, make([]byte, PaddedSize(int64(len(b)))-int64(len(b)))...)
	}
	okReport := []byte(`{"schema":1,"desk":"helpdesk","category":"","language":"","submitted":"2026-11-25T11:00:00Z","sealed_by":"client","answers":[],"attachments":[],"reply_recipient":"","mailbox":""}`)
	nonzero := bytes.Clone(good)
	nonzero[len(nonzero)-1] = 1
	badSum := bytes.Clone(good)
	// Flip a byte of the first attachment's content (after two headers and the report).
	idx := bytes.Index(badSum, []byte{0xff, 0xd8, 0xff})
	badSum[idx+5] ^= 0x01
	return []badBundle{
		{"dotdot", "an entry named ../evil", "unsafe_name", finish(append(entry(reportName, okReport), entry("../evil", []byte("x"))...))},
		{"absolute", "the first entry is /etc/passwd", "unsafe_name", finish(entry("/etc/passwd", []byte("root")))},
		{"not-first", "an attachment before report.json", "not_first", finish(entry("files/001-x", []byte("hello")))},
		{"extra", "an entry report.json does not list", "unexpected_entry", finish(append(entry(reportName, okReport), entry("files/001-x", []byte("x"))...))},
		{"digest", "an attachment whose bytes do not match its SHA-256", "digest", badSum},
		{"digest-listed", "report.json lists a size-5 file of SHA-256(empty) and it holds 5 other bytes", "digest", finish(append(entry(reportName, rep), entry("files/001-x", []byte("hello"))...))},
		{"padding", "a non-zero byte in the padding", "padding", nonzero},
		{"noncanonical", "report.json with a space after a colon and keys in another order", "not_canonical",
			finish(entry(reportName, []byte(`{"desk": "helpdesk","schema":1,"category":"","language":"","submitted":"2026-11-25T11:00:00Z","sealed_by":"client","answers":[],"attachments":[],"reply_recipient":"","mailbox":""}`)))},
		{"seq-zero", "report.json with an explicit \"seq\":0, which the canonical form leaves out", "not_canonical",
			finish(entry(reportName, []byte(`{"schema":1,"desk":"helpdesk","category":"","language":"","submitted":"2026-11-25T11:00:00Z","sealed_by":"client","answers":[],"attachments":[],"reply_recipient":"","mailbox":"","seq":0}`)))},
		{"long-padding", "512 more zero bytes than the padded size", "padding", append(bytes.Clone(good), make([]byte, 512)...)},
		{"truncated", "the archive ends inside an attachment", "truncated", good[:1536+10]},
		{"checksum", "report.json's tar header checksum is wrong", "bad_tar_header", func() []byte {
			b := bytes.Clone(good)
			b[0] = 'R' // the name changes, the checksum field does not
			return b
		}()},
	}
}
