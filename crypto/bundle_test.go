package crypto

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

func TestPadme(t *testing.T) {
	for n := int64(1); n < 1<<22; n = n*3/2 + 1 {
		p := Padme(n)
		if p < n || float64(p-n) > 0.12*float64(n)+1 {
			t.Fatalf("Padme(%d) = %d: overhead too large", n, p)
		}
		if PaddedSize(n)%512 != 0 {
			t.Fatalf("PaddedSize(%d) not a block multiple", n)
		}
	}
}

func encryptTo(t testing.TB, plain []byte, cards ...*Card) []byte {
	rs, err := Recipients(cards)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, err := age.Encrypt(&b, rs...)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	return b.Bytes()
}

func TestAgeHeader(t *testing.T) {
	a, _ := NewIdentity("a", testClassicSecret)
	b, _ := NewIdentity("b", testAdminSecret)
	pq, _ := NewIdentity("pq", testPQSecret)
	two := encryptTo(t, []byte("hello"), a.Card(), b.Card())
	one := encryptTo(t, []byte("hello"), pq.Card())
	var scrypt bytes.Buffer
	sr, _ := age.NewScryptRecipient("x")
	sr.SetWorkFactor(10)
	w, _ := age.Encrypt(&scrypt, sr)
	w.Write([]byte("x"))
	w.Close()
	for _, tc := range []struct {
		name  string
		data  []byte
		types []string
		want  error
	}{
		{"two X25519", two, []string{"X25519", "X25519"}, nil},
		{"one hybrid", one, []string{"mlkem768x25519"}, nil},
		{"too few stanzas", two, []string{"X25519"}, ErrStanzas},
		{"too many stanzas", one, []string{"mlkem768x25519", "mlkem768x25519"}, ErrStanzas},
		{"wrong type", one, []string{"X25519"}, ErrStanzas},
		{"scrypt", scrypt.Bytes(), []string{"X25519"}, ErrStanzas},
		{"not age", []byte("hello world\n"), []string{"X25519"}, ErrNotAge},
		{"truncated header", two[:60], []string{"X25519", "X25519"}, ErrNotAge},
		{"armored", []byte("-----BEGIN AGE ENCRYPTED FILE-----\n"), []string{"X25519"}, ErrNotAge},
		{"bad mac", bytes.Replace(two, []byte("\n--- "), []byte("\n--- !"), 1), []string{"X25519", "X25519"}, ErrNotAge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadAgeHeader(bufio.NewReader(bytes.NewReader(tc.data)), MaxHeaderLen(len(tc.types)))
			if err == nil {
				err = h.CheckTypes(tc.types)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil {
				if err := CheckAgePayload(int64(len(tc.data) - h.Len)); err != nil {
					t.Fatalf("payload: %v", err)
				}
			}
		})
	}
}

func TestCheckAgePayload(t *testing.T) {
	full := int64(64<<10 + 16)
	for _, tc := range []struct {
		n  int64
		ok bool
	}{
		{32, true}, {33, true}, {31, false}, {16 + full, true}, {16 + full + 16, false}, {16 + full + 17, true},
		{16 + 2*full, true}, {16 + full + 1, false}, {0, false},
	} {
		if err := CheckAgePayload(tc.n); (err == nil) != tc.ok {
			t.Errorf("CheckAgePayload(%d) = %v, want ok=%v", tc.n, err, tc.ok)
		}
	}
}

func TestSealBundle(t *testing.T) {
	a, _ := NewIdentity("a", testClassicSecret)
	b, _ := NewIdentity("b", testAdminSecret)
	content := bytes.Repeat([]byte("0123456789abcdef"), 10000) // crosses STREAM chunks
	sum := sha256.Sum256(content)
	for _, n := range []int{0, 1, 3} {
		var files []File
		for i := 0; i < n; i++ {
			files = append(files, File{Attachment: Attachment{Name: "f.bin", Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:]), Type: "application/octet-stream"},
				Body: bytes.NewReader(content)})
		}
		r := &Report{Desk: "d", Submitted: SubmittedAt(time.Now()), SealedBy: SealedByClient, Answers: []Answer{{"message", "hi"}}}
		rd, size, err := SealBundle([]*Card{a.Card(), b.Card()}, r, files)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(ct)) != size {
			t.Fatalf("%d files: sealed %d bytes, announced %d", n, len(ct), size)
		}
		for _, id := range []*Identity{a, b} {
			br, err := OpenBundle(bytes.NewReader(ct), id.Age())
			if err != nil {
				t.Fatal(err)
			}
			count := 0
			for {
				_, rd, err := br.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(rd)
				if err != nil || !bytes.Equal(body, content) {
					t.Fatalf("attachment differs: %v", err)
				}
				count++
			}
			if count != n {
				t.Fatalf("read %d attachments, want %d", count, n)
			}
		}
	}
}

func TestSealBundleChangedFile(t *testing.T) {
	a, _ := NewIdentity("a", testClassicSecret)
	f := File{Attachment: Attachment{Name: "x", Size: 5, SHA256: hex.EncodeToString(make([]byte, 32))}, Body: strings.NewReader("hello")}
	rd, _, err := SealBundle([]*Card{a.Card()}, &Report{Desk: "d"}, []File{f})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rd); err == nil || !strings.Contains(err.Error(), "changed while reading") {
		t.Fatalf("got %v, want a changed-file error", err)
	}
}

func TestEntryName(t *testing.T) {
	for _, tc := range []struct {
		i          int
		name, want string
	}{
		{1, "photo.jpg", "files/001-photo.jpg"},
		{2, "../../etc/passwd", "files/002-_._.._etc_passwd"},
		{3, ".hidden", "files/003-_hidden"},
		{4, "صورة.png", "files/004-_.png"},
		{5, "", "files/005-file"},
		{6, "a  b\x00c", "files/006-a_b_c"},
		{100, strings.Repeat("x", 300), "files/100-" + strings.Repeat("x", 80)},
	} {
		if got := EntryName(tc.i, tc.name); got != tc.want {
			t.Errorf("EntryName(%d, %q) = %q, want %q", tc.i, tc.name, got, tc.want)
		}
		if !safeEntryName(EntryName(tc.i, tc.name)) || len(EntryName(tc.i, tc.name)) >= 100 {
			t.Errorf("EntryName(%d, %q) is not a safe short name", tc.i, tc.name)
		}
	}
}

func TestInvalidUTF8StillOpens(t *testing.T) {
	r := &Report{Desk: "d", Answers: []Answer{{"message", "caf\xe9 \xff"}}}
	f := File{Attachment: Attachment{Name: "bad\xffname.txt", Size: 2, SHA256: hex.EncodeToString(func() []byte { s := sha256.Sum256([]byte("hi")); return s[:] }())},
		Body: strings.NewReader("hi")}
	var b bytes.Buffer
	if _, err := WriteBundle(&b, r, []File{f}); err != nil {
		t.Fatal(err)
	}
	got, files, err := readAll(&b)
	if err != nil {
		t.Fatalf("a report with invalid UTF-8 does not open: %v", err)
	}
	if got.Answers[0].Value != "caf\uFFFD \uFFFD" || len(files) != 1 {
		t.Fatalf("got %q", got.Answers[0].Value)
	}
}

// TestSealReport: sealing names the receipt's mailbox and the reply
// recipient derived from it, post-quantum exactly when the recipients are
// (age seals to one kind at a time), and refuses a recipient that does not
// parse.
func TestSealReport(t *testing.T) {
	classic, _ := GenerateIdentity("classic", true)
	classic2, _ := GenerateIdentity("classic2", true)
	pq, _ := GenerateIdentity("pq", false)
	pq2, _ := GenerateIdentity("pq2", false)
	rc := NewReceipt()
	for _, tc := range []struct {
		name   string
		to     []*Identity
		wantPQ bool
	}{
		{"post-quantum", []*Identity{pq, pq2}, true},
		{"classic", []*Identity{classic, classic2}, false},
		{"one classic", []*Identity{classic}, false},
	} {
		var cards []*Card
		for _, id := range tc.to {
			cards = append(cards, id.Card())
		}
		r := &Report{Desk: "d", Submitted: SubmittedAt(time.Now()), SealedBy: SealedByClient, Answers: []Answer{{"message", "hi"}}}
		rd, _, err := SealReport(RecipientsOf(cards), rc, r, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ct, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := rc.ReplyIdentity(tc.wantPQ)
		for _, id := range tc.to {
			br, err := OpenBundle(bytes.NewReader(ct), id.Age())
			if err != nil {
				t.Fatalf("%s: %s cannot open it: %v", tc.name, id.Name(), err)
			}
			got := br.Report()
			if got.Mailbox != rc.MailboxID() || got.ReplyRecipient != want.Recipient() {
				t.Errorf("%s: mailbox %q reply %q, want %q %q", tc.name, got.Mailbox, got.ReplyRecipient, rc.MailboxID(), want.Recipient())
			}
			if PostQuantumRecipient(got.ReplyRecipient) != tc.wantPQ {
				t.Errorf("%s: reply recipient post-quantum %v, want %v", tc.name, !tc.wantPQ, tc.wantPQ)
			}
		}
	}
	if _, _, err := SealReport([]string{"age1notarecipient"}, rc, &Report{Desk: "d"}, nil); !errors.Is(err, ErrRecipient) {
		t.Errorf("an invalid recipient: %v, want ErrRecipient", err)
	}
	if _, _, err := SealReport(nil, rc, &Report{Desk: "d"}, nil); err == nil {
		t.Error("sealed to no one")
	}
}

// TestThreadSeq: one more than the highest seen, 1 for nothing seen, never
// past MaxSeq; a bundle whose seq is out of range is refused, one at the
// limit read.
func TestThreadSeq(t *testing.T) {
	for _, c := range []struct {
		seen []int64
		want int64
	}{{nil, 1}, {[]int64{0}, 1}, {[]int64{3, 1, 2}, 4}, {[]int64{MaxSeq - 1}, MaxSeq}, {[]int64{MaxSeq}, MaxSeq}} {
		if got := ThreadSeq(c.seen...); got != c.want {
			t.Errorf("ThreadSeq(%v) = %d, want %d", c.seen, got, c.want)
		}
	}
	for _, c := range []struct {
		seq int64
		ok  bool
	}{{MaxSeq, true}, {1, true}, {MaxSeq + 1, false}, {-1, false}} {
		var b bytes.Buffer
		if _, err := WriteBundle(&b, &Report{Desk: "d", Seq: c.seq}, nil); err != nil {
			t.Fatal(err)
		}
		br, err := NewBundleReader(&b)
		if c.ok && (err != nil || br.Report().Seq != c.seq) {
			t.Errorf("seq %d: %v", c.seq, err)
		}
		if !c.ok && !errors.Is(err, ErrBundle) {
			t.Errorf("seq %d read: %v", c.seq, err)
		}
	}
}
