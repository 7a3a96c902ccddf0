package crypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// BundleSchema is the schema version written in report.json.
const BundleSchema = 1

// Who sealed a bundle: the submitter's own client, or the relay on the
// submitter's behalf (the no-JavaScript browser path).
const (
	SealedByClient = "client"
	SealedByServer = "server"
	// SealedByHandler marks a reply written by a handler of the desk.
	SealedByHandler = "handler"
)

// Which client sealed a client-sealed report or follow-up (Report.Client).
const (
	// ClientCLI: amana submit or amana followup.
	ClientCLI = "cli"
	// ClientBrowser: the relay's pages, with JavaScript.
	ClientBrowser = "browser"
)

// What kind of item a reply or a follow-up is (Report.Kind); "" is an
// ordinary one.
const (
	// KindStatus: a reply that tells the submitter the case's new status.
	KindStatus = "status"
	// KindSurvey: a follow-up answering the satisfaction survey.
	KindSurvey = "survey"
)

const (
	// MaxStatusText bounds a status message's text: one line.
	MaxStatusText = 200
	// MaxSurveyComment bounds a survey follow-up's comment.
	MaxSurveyComment = 2000
)

// ErrSurvey: a follow-up is not a survey answer of the form §8.10 gives.
var ErrSurvey = errors.New("not a valid survey answer")

const (
	blockSize = 512
	// MaxReportLen bounds report.json.
	MaxReportLen = 1 << 20
	// MaxAttachments bounds the attachments of one bundle.
	MaxAttachments = 100
	// MaxAttachmentSize is the largest attachment a USTAR header can carry.
	MaxAttachmentSize = 1<<33 - 1
	reportName        = "report.json"
)

// Bundle errors a reader reports. Each wraps ErrBundle.
var (
	ErrBundle        = errors.New("invalid bundle")
	ErrUnsafeName    = fmt.Errorf("%w: unsafe entry name", ErrBundle)
	ErrNotFirst      = fmt.Errorf("%w: report.json is not the first entry", ErrBundle)
	ErrDigest        = fmt.Errorf("%w: attachment SHA-256 mismatch", ErrBundle)
	ErrPadding       = fmt.Errorf("%w: non-zero or mis-sized padding", ErrBundle)
	ErrTruncated     = fmt.Errorf("%w: truncated", ErrBundle)
	ErrBadTarHeader  = fmt.Errorf("%w: bad tar header", ErrBundle)
	ErrUnexpectedEnt = fmt.Errorf("%w: unexpected entry", ErrBundle)
	ErrNotCanonical  = fmt.Errorf("%w: report.json is not in canonical form", ErrBundle)
	// ErrNoDigest: report.json lists an attachment without its SHA-256 in
	// an item its submitter's client did not seal (sealed_by server or
	// handler): only a client that seals in one read may leave it out.
	ErrNoDigest = fmt.Errorf("%w: attachment without its SHA-256 in an item not sealed by the client", ErrBundle)
	// ErrReportMembers: report.json is canonical but breaks a rule of its
	// members (client, kind, status, survey; §8.2).
	ErrReportMembers = fmt.Errorf("%w: report.json breaks a rule of its members", ErrBundle)
)

// Report is report.json, the first entry of every bundle.
type Report struct {
	Schema      int          `json:"schema"`
	Desk        string       `json:"desk"`
	Category    string       `json:"category"`
	Language    string       `json:"language"`
	Submitted   string       `json:"submitted"` // RFC 3339, UTC, rounded down to the hour
	SealedBy    string       `json:"sealed_by"`
	Answers     []Answer     `json:"answers"`
	Attachments []Attachment `json:"attachments"`
	// The follow-up channel: the age recipient that opens the desk's replies
	// to this report, and the mailbox they are filed in (both derived from
	// the submitter's receipt); empty when there is no receipt.
	ReplyRecipient string `json:"reply_recipient"`
	Mailbox        string `json:"mailbox"`
	// Seq places a follow-up or a reply in its thread: one more than the
	// highest Seq among the thread's items its writer had read (the report
	// counts as 0), so that an item comes after everything it answers
	// whatever the clocks say. Absent (0) in a report and in items written
	// before it existed. See ThreadSeq.
	Seq int64 `json:"seq,omitempty"`
	// Client is which client sealed a client-sealed item: ClientCLI or
	// ClientBrowser. Absent in relay-sealed items, replies, self-encrypted
	// files and items written before it existed.
	Client string `json:"client,omitempty"`
	// Kind is KindStatus for a status message (a signed reply) or
	// KindSurvey for a survey follow-up; absent for an ordinary item.
	Kind string `json:"kind,omitempty"`
	// Status is the status a status message tells of (a name); Survey,
	// in a status message only, asks the submitter the satisfaction
	// question.
	Status string `json:"status,omitempty"`
	Survey bool   `json:"survey,omitempty"`
	// Replies from the desk only: the key ID of the handler who wrote it,
	// the age recipients the submitter's follow-ups go to (the handlers of
	// the case), and the handler's signature (SignReply). Absent otherwise.
	From       string   `json:"from,omitempty"`
	Recipients []string `json:"recipients,omitempty"`
	Signature  string   `json:"signature,omitempty"`
}

// Answer is one form field's answer.
type Answer struct {
	Field string `json:"field"`
	Value string `json:"value"`
}

// Attachment describes one attached file.
type Attachment struct {
	Name string `json:"name"` // as the submitter named it; never trusted as a path
	Size int64  `json:"size"`
	// SHA256 is the file's SHA-256, lower-case hex. Only a bundle sealed by
	// the submitter's own client (SealedByClient) may leave it out: its
	// client sealed the file in one read without hashing it (OpenFile),
	// and age's AEAD authenticates every byte of the bundle. The reader
	// then computes it as the entry is read (Computed).
	SHA256 string `json:"sha256,omitempty"`
	Type   string `json:"type"` // media type as declared by the submitter
	// Computed is set by BundleReader when report.json gave no sha256:
	// SHA256 is then the hash of the entry's bytes, filled in once the
	// entry has been read to its end, and was checked against nothing
	// (nothing to check it against: the AEAD is what vouches for the
	// bytes). Never written.
	Computed bool `json:"-"`
}

// MaxSeq is the largest Seq: writers stop there, readers refuse more.
const MaxSeq = 1<<31 - 1

// ThreadSeq is the Seq of a new item in a thread whose items the writer has
// read carry seen: one more than the highest, at most MaxSeq.
func ThreadSeq(seen ...int64) int64 {
	var top int64
	for _, s := range seen {
		top = max(top, s)
	}
	return min(top+1, MaxSeq)
}

// SubmittedAt rounds t down to the hour, in UTC, in the form report.json uses.
func SubmittedAt(t time.Time) string {
	return t.UTC().Truncate(time.Hour).Format(time.RFC3339)
}

// MarshalReport encodes a report canonically: the struct's field order, no
// insignificant whitespace, no HTML escaping.
func MarshalReport(r *Report) ([]byte, error) {
	// Invalid UTF-8 becomes U+FFFD here, once, so the bytes written read
	// back to exactly the same bytes.
	for _, p := range []*string{&r.Desk, &r.Category, &r.Language, &r.Submitted, &r.SealedBy, &r.Client, &r.Kind, &r.Status, &r.ReplyRecipient, &r.Mailbox, &r.From, &r.Signature} {
		*p = strings.ToValidUTF8(*p, "\uFFFD")
	}
	for i := range r.Answers {
		r.Answers[i].Field = strings.ToValidUTF8(r.Answers[i].Field, "\uFFFD")
		r.Answers[i].Value = strings.ToValidUTF8(r.Answers[i].Value, "\uFFFD")
	}
	for i := range r.Recipients {
		r.Recipients[i] = strings.ToValidUTF8(r.Recipients[i], "\uFFFD")
	}
	for i := range r.Attachments {
		r.Attachments[i].Name = strings.ToValidUTF8(r.Attachments[i].Name, "\uFFFD")
		r.Attachments[i].Type = strings.ToValidUTF8(r.Attachments[i].Type, "\uFFFD")
	}
	if r.Answers == nil {
		r.Answers = []Answer{}
	}
	if r.Attachments == nil {
		r.Attachments = []Attachment{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encoding report: %w", err)
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if len(out) > MaxReportLen {
		return nil, fmt.Errorf("report is larger than %d bytes", MaxReportLen)
	}
	return out, nil
}

// Padme returns the Padmé padded length of n (Nikitin et al., "Reducing
// Metadata Leakage from Encrypted Files and Communication with PURBs", PETS
// 2019): at most about 12% more, leaking O(log log n) bits of the length.
func Padme(n int64) int64 {
	if n < 2 {
		return n
	}
	e := int64(bits.Len64(uint64(n))) - 1 // floor(log2 n)
	s := int64(bits.Len64(uint64(e)))     // floor(log2 e) + 1
	mask := int64(1)<<(e-s) - 1
	return (n + mask) &^ mask
}

func roundBlock(n int64) int64 { return (n + blockSize - 1) &^ (blockSize - 1) }

// PaddedSize is the size of a bundle's plaintext whose tar archive is n
// bytes: Padmé, then rounded up to a whole 512-byte block.
func PaddedSize(n int64) int64 { return roundBlock(Padme(n)) }

// TarSize is the size of the archive for a report.json of reportLen bytes and
// attachments of the given sizes, end-of-archive blocks included.
func TarSize(reportLen int, sizes []int64) int64 {
	n := blockSize + roundBlock(int64(reportLen))
	for _, s := range sizes {
		n += blockSize + roundBlock(s)
	}
	return n + 2*blockSize
}

// AgePayloadSize is the size of an age file body (nonce and STREAM chunks,
// header excluded) for a plaintext of n bytes.
func AgePayloadSize(n int64) int64 {
	const chunk = 64 << 10
	chunks := (n + chunk - 1) / chunk
	if chunks == 0 {
		chunks = 1
	}
	return 16 + n + 16*chunks
}

// EntryName is the tar entry name of the i-th attachment (counting from 1):
// "files/NNN-" and the name reduced to ASCII letters, digits, '.', '_' and
// '-', every other run of bytes replaced by one '_', no leading '.', at most
// 80 bytes. The true name is only in report.json.
func EntryName(i int, name string) string {
	var b strings.Builder
	for j := 0; j < len(name); j++ {
		c := name[j]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if b.Len() == 0 && c == '.' {
			ok = false
		}
		if !ok {
			c = '_'
		}
		if c == '_' && strings.HasSuffix(b.String(), "_") {
			continue
		}
		if b.Len() == 80 {
			break
		}
		b.WriteByte(c)
	}
	s := b.String()
	if s == "" || s == "_" {
		s = "file"
	}
	return fmt.Sprintf("files/%03d-%s", i, s)
}

// tarHeader is the USTAR header Amana writes: fixed mode 0600, zero owner and
// time, regular file.
func tarHeader(name string, size int64) []byte {
	h := make([]byte, blockSize)
	copy(h[0:100], name)
	copy(h[100:108], "0000600\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], "00000000000\x00")
	h[156] = '0'
	copy(h[257:263], "ustar\x00")
	copy(h[263:265], "00")
	copy(h[329:337], "0000000\x00")
	copy(h[337:345], "0000000\x00")
	copy(h[148:156], "        ")
	var sum int64
	for _, c := range h {
		sum += int64(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

// File is an attachment to be written into a bundle. Size and SHA256 must be
// right: the writer checks them as it streams and fails otherwise. SHA256
// may be empty only in a report sealed by the client (SealedByClient); the
// writer then writes no sha256 for it and hashes nothing (OpenFile).
type File struct {
	Attachment
	Body io.Reader
	// hashed: SHA256 was computed from Body's own file by HashFile, whose
	// Body fails if the file changed since; the writer does not hash the
	// bytes a second time.
	hashed bool
}

// HashFile reads f once to its end for its size and SHA-256, then rewinds
// it and returns it as a File. Writing the bundle then reads the file a
// second time without hashing it again: the Body checks, at its end, that
// the file's size and modification time are what they were when it was
// hashed, and fails with "file changed while reading" otherwise (a handler
// opening the bundle checks every attachment's SHA-256 in any case).
func HashFile(f *os.File, name, typ string) (File, error) {
	before, err := f.Stat()
	if err != nil {
		return File{}, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return File{}, err
	}
	if n != before.Size() {
		return File{}, errors.New("file changed while reading: size differs")
	}
	return File{
		Attachment: Attachment{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Type: typ},
		Body:       &unchangedFile{f: f, size: n, mod: before.ModTime()},
		hashed:     true,
	}, nil
}

// OpenFile returns f as a File of its current size for a bundle the
// client seals (SealedByClient), without reading it: its SHA-256 is left
// out of report.json, so that sealing reads the file once and hashes
// nothing. The Body checks, at its end, that the file's size and
// modification time are what they were here, and fails with "file changed
// while reading" otherwise. The handler's reader computes the SHA-256 as it
// opens the bundle (Attachment.Computed).
func OpenFile(f *os.File, name, typ string) (File, error) {
	fi, err := f.Stat()
	if err != nil {
		return File{}, err
	}
	if !fi.Mode().IsRegular() {
		return File{}, errors.New("not a regular file")
	}
	return File{
		Attachment: Attachment{Name: name, Size: fi.Size(), Type: typ},
		Body:       &unchangedFile{f: f, size: fi.Size(), mod: fi.ModTime()},
	}, nil
}

// unchangedFile reads a file HashFile hashed or OpenFile opened and, at
// its end, fails if the file's size or modification time moved since.
type unchangedFile struct {
	f    *os.File
	size int64
	mod  time.Time
}

func (u *unchangedFile) Read(p []byte) (int, error) {
	n, err := u.f.Read(p)
	if err == io.EOF {
		fi, serr := u.f.Stat()
		if serr != nil {
			return n, serr
		}
		if fi.Size() != u.size || !fi.ModTime().Equal(u.mod) {
			return n, errors.New("file changed while reading: size or modification time differs")
		}
	}
	return n, err
}

// WriteBundle writes the padded plaintext of a bundle: the tar archive of
// report.json and the files, then zero padding to PaddedSize. It fills
// r.Attachments from files and returns the bytes written.
func WriteBundle(w io.Writer, r *Report, files []File) (int64, error) {
	if len(files) > MaxAttachments {
		return 0, fmt.Errorf("at most %d attachments", MaxAttachments)
	}
	r.Schema = BundleSchema
	r.Attachments = make([]Attachment, len(files))
	sizes := make([]int64, len(files))
	for i, f := range files {
		if f.Size < 0 || f.Size > MaxAttachmentSize {
			return 0, fmt.Errorf("attachment %q: size out of range", f.Name)
		}
		if err := checkFileSum(r, f.Attachment); err != nil {
			return 0, err
		}
		r.Attachments[i] = f.Attachment
		sizes[i] = f.Size
	}
	if err := r.CheckMembers(); err != nil {
		return 0, err
	}
	rep, err := MarshalReport(r)
	if err != nil {
		return 0, err
	}
	total := PaddedSize(TarSize(len(rep), sizes))
	cw := &countWriter{w: w}
	if err := writeEntry(cw, reportName, int64(len(rep)), bytes.NewReader(rep), ""); err != nil {
		return cw.n, err
	}
	for i, f := range files {
		want := f.SHA256
		if f.hashed {
			want = ""
		}
		if err := writeEntry(cw, EntryName(i+1, r.Attachments[i].Name), f.Size, f.Body, want); err != nil {
			return cw.n, fmt.Errorf("attachment %q: %w", f.Name, err)
		}
	}
	if err := writeZeros(cw, total-cw.n); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

// checkFileSum refuses to write what the reader refuses: an attachment
// without a SHA-256 in an item the client did not seal, or a malformed one.
func checkFileSum(r *Report, a Attachment) error {
	switch {
	case a.SHA256 == "" && r.SealedBy != SealedByClient:
		return fmt.Errorf("attachment %q: %w", a.Name, ErrNoDigest)
	case a.SHA256 != "" && len(a.SHA256) != 64:
		return fmt.Errorf("attachment %q: the SHA-256 is not 64 hex characters", a.Name)
	}
	return nil
}

// copyBufs recycles writeEntry's copy buffers of copyBufSize: a file is
// read in 1 MiB reads rather than io.Copy's 32 KiB. A smaller entry gets a
// buffer of its own size.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

const copyBufSize = 1 << 20

func writeEntry(w io.Writer, name string, size int64, body io.Reader, wantSum string) error {
	if _, err := w.Write(tarHeader(name, size)); err != nil {
		return err
	}
	var h hash.Hash
	dst := w
	if wantSum != "" {
		h = sha256.New()
		dst = io.MultiWriter(w, h)
	}
	var n int64
	var err error
	if size < copyBufSize {
		n, err = io.CopyBuffer(dst, io.LimitReader(body, size), make([]byte, max(size, 1)))
	} else {
		buf := copyBufs.Get().(*[]byte)
		n, err = io.CopyBuffer(dst, io.LimitReader(body, size), *buf)
		copyBufs.Put(buf)
	}
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("file shrank while reading: %d of %d bytes", n, size)
	}
	if u, ok := body.(*unchangedFile); ok {
		// Read HashFile's file to its end, where it checks it is unchanged.
		if k, err := u.Read(make([]byte, 1)); k > 0 {
			return errors.New("file changed while reading: it grew")
		} else if err != nil && err != io.EOF {
			return err
		}
	}
	if h != nil && hex.EncodeToString(h.Sum(nil)) != wantSum {
		return errors.New("file changed while reading: SHA-256 differs")
	}
	return writeZeros(w, roundBlock(size)-size)
}

var zeroBlock [64 << 10]byte

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		if _, err := w.Write(zeroBlock[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// BundleReader reads a bundle's plaintext strictly: report.json first, then
// exactly the attachments it lists, under the names EntryName gives, each
// checked against its size and SHA-256, then the end of the archive and zero
// padding of exactly the right length.
type BundleReader struct {
	r      *countReader
	report Report
	next   int
	cur    *entryReader
	done   bool
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// NewBundleReader reads and checks report.json from a bundle's plaintext.
func NewBundleReader(r io.Reader) (*BundleReader, error) {
	br := &BundleReader{r: &countReader{r: r}}
	name, size, err := br.header()
	if err != nil {
		return nil, err
	}
	if name != reportName {
		if !safeEntryName(name) {
			return nil, fmt.Errorf("%w %q", ErrUnsafeName, name)
		}
		return nil, ErrNotFirst
	}
	if size > MaxReportLen {
		return nil, fmt.Errorf("%w: report.json larger than %d bytes", ErrBundle, MaxReportLen)
	}
	raw := make([]byte, size)
	if _, err := io.ReadFull(br.r, raw); err != nil {
		return nil, readErr(err)
	}
	if err := br.skipPad(size); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &br.report); err != nil {
		return nil, fmt.Errorf("%w: report.json: %v", ErrBundle, err)
	}
	if canon, err := MarshalReport(&br.report); err != nil || !bytes.Equal(canon, raw) {
		return nil, ErrNotCanonical
	}
	if br.report.Schema != BundleSchema {
		return nil, fmt.Errorf("%w: unsupported report schema %d", ErrBundle, br.report.Schema)
	}
	if len(br.report.Attachments) > MaxAttachments {
		return nil, fmt.Errorf("%w: more than %d attachments", ErrBundle, MaxAttachments)
	}
	if br.report.Seq < 0 || br.report.Seq > MaxSeq {
		return nil, fmt.Errorf("%w: seq out of range", ErrBundle)
	}
	for _, a := range br.report.Attachments {
		if a.Size < 0 || a.Size > MaxAttachmentSize || a.SHA256 != "" && len(a.SHA256) != 64 {
			return nil, fmt.Errorf("%w: report.json lists an invalid attachment", ErrBundle)
		}
		if a.SHA256 == "" && br.report.SealedBy != SealedByClient {
			return nil, ErrNoDigest
		}
	}
	if err := br.report.CheckMembers(); err != nil {
		return nil, err
	}
	return br, nil
}

// Report returns the parsed report.json.
func (br *BundleReader) Report() *Report { return &br.report }

// Next returns the next attachment and a reader of its bytes. The reader
// fails with ErrDigest at its end if the bytes do not match the SHA-256 in
// report.json. When report.json gave none (a client-sealed bundle), the
// reader computes it instead: once the reader has returned io.EOF, the
// attachment (the one Next returned, which is the one in Report) has
// SHA256 set to the entry's hash and Computed true. After the last
// attachment Next checks the end of the archive and the padding, and returns
// io.EOF.
func (br *BundleReader) Next() (*Attachment, io.Reader, error) {
	if br.cur != nil {
		if _, err := io.Copy(io.Discard, br.cur); err != nil {
			return nil, nil, err
		}
		if err := br.skipPad(br.cur.size); err != nil {
			return nil, nil, err
		}
		br.cur = nil
	}
	if br.next == len(br.report.Attachments) {
		if br.done {
			return nil, nil, io.EOF
		}
		if err := br.finish(); err != nil {
			return nil, nil, err
		}
		br.done = true
		return nil, nil, io.EOF
	}
	a := &br.report.Attachments[br.next]
	br.next++
	name, size, err := br.header()
	if err != nil {
		return nil, nil, err
	}
	if !safeEntryName(name) {
		return nil, nil, fmt.Errorf("%w %q", ErrUnsafeName, name)
	}
	if name != EntryName(br.next, a.Name) || size != a.Size {
		return nil, nil, fmt.Errorf("%w %q: does not match report.json", ErrUnexpectedEnt, name)
	}
	br.cur = &entryReader{r: io.LimitReader(br.r, size), size: size, a: a, want: a.SHA256, h: sha256.New()}
	return a, br.cur, nil
}

func (br *BundleReader) finish() error {
	for i := 0; i < 2; i++ {
		var b [blockSize]byte
		if _, err := io.ReadFull(br.r, b[:]); err != nil {
			return readErr(err)
		}
		if b != [blockSize]byte{} {
			if !checksumOK(b[:]) {
				return ErrPadding
			}
			name := string(bytes.TrimRight(b[0:100], "\x00"))
			if !safeEntryName(name) {
				return fmt.Errorf("%w %q", ErrUnsafeName, name)
			}
			return fmt.Errorf("%w %q: not listed in report.json", ErrUnexpectedEnt, name)
		}
	}
	tarLen := br.r.n
	buf := make([]byte, 32<<10)
	for {
		n, err := br.r.Read(buf)
		for _, c := range buf[:n] {
			if c != 0 {
				return ErrPadding
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if br.r.n != PaddedSize(tarLen) {
		return ErrPadding
	}
	return nil
}

func (br *BundleReader) header() (string, int64, error) {
	var h [blockSize]byte
	if _, err := io.ReadFull(br.r, h[:]); err != nil {
		return "", 0, readErr(err)
	}
	if h == [blockSize]byte{} {
		return "", 0, fmt.Errorf("%w: archive ends before every attachment in report.json", ErrTruncated)
	}
	name := string(bytes.TrimRight(h[0:100], "\x00"))
	if !safeEntryName(name) {
		return "", 0, fmt.Errorf("%w %q", ErrUnsafeName, name)
	}
	if !checksumOK(h[:]) {
		return "", 0, ErrBadTarHeader
	}
	if h[156] != '0' && h[156] != 0 {
		return "", 0, fmt.Errorf("%w %q: not a regular file", ErrUnexpectedEnt, name)
	}
	if string(h[257:263]) != "ustar\x00" || bytes.IndexByte(h[0:100], 0) < 0 && len(name) >= 100 || anyNonZero(h[345:500]) {
		return "", 0, ErrBadTarHeader
	}
	size, ok := parseOctal(h[124:136])
	if !ok || size > MaxAttachmentSize {
		return "", 0, ErrBadTarHeader
	}
	return name, size, nil
}

// readErr reports the end of the stream as truncation and passes any other
// failure (age's authentication, a disk error) through.
func readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return ErrTruncated
	}
	return err
}

func anyNonZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return true
		}
	}
	return false
}

func checksumOK(h []byte) bool {
	want, ok := parseOctal(h[148:156])
	if !ok {
		return false
	}
	var sum int64
	for i, c := range h {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	return sum == want
}

func parseOctal(b []byte) (int64, bool) {
	s := strings.Trim(string(b), " \x00")
	if s == "" || len(s) > 11 {
		return 0, false
	}
	var n int64
	for _, c := range []byte(s) {
		if c < '0' || c > '7' {
			return 0, false
		}
		n = n*8 + int64(c-'0')
	}
	return n, true
}

func (br *BundleReader) skipPad(size int64) error {
	pad := roundBlock(size) - size
	if pad == 0 {
		return nil
	}
	b := make([]byte, pad)
	if _, err := io.ReadFull(br.r, b); err != nil {
		return readErr(err)
	}
	if anyNonZero(b) {
		return ErrPadding
	}
	return nil
}

// safeEntryName rejects absolute names, ".." components, backslashes,
// control characters and invalid UTF-8.
//
// It guards paths only. What a name may do on a screen (bidirectional
// overrides, invisible marks) is the handler's tools' to judge where they
// show or write it: a bundle is never refused for it, so that no evidence
// is lost to a name.
func safeEntryName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || !utf8.ValidString(name) {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." || part == "." || part == "" {
			return false
		}
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

type entryReader struct {
	r    io.Reader
	size int64
	read int64
	a    *Attachment // filled in at the end when want is ""
	want string
	h    interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func (e *entryReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.h.Write(p[:n])
	e.read += int64(n)
	if err == io.EOF {
		if e.read != e.size {
			return n, ErrTruncated
		}
		got := hex.EncodeToString(e.h.Sum(nil))
		if e.want == "" {
			if e.a.SHA256 == "" {
				e.a.SHA256, e.a.Computed = got, true
			}
		} else if got != e.want {
			return n, ErrDigest
		}
	}
	return n, err
}

// CheckMembers checks the rules of report.json's client, kind, status and
// survey members (§8.2): client only in a client-sealed item and one of
// ClientCLI and ClientBrowser; kind KindStatus only in a signed reply
// (sealed_by handler) with a status name and exactly one one-line message
// answer, KindSurvey only in a follow-up (sealed_by client or server) whose
// answers ParseSurvey accepts; status and survey only in a status message;
// neither kind with attachments. The bundle reader refuses an item that
// breaks one with ErrReportMembers.
func (r *Report) CheckMembers() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrReportMembers, fmt.Sprintf(format, a...))
	}
	switch r.Client {
	case "":
	case ClientCLI, ClientBrowser:
		if r.SealedBy != SealedByClient {
			return bad("client in an item not sealed by the client")
		}
	default:
		return bad("unknown client")
	}
	switch r.Kind {
	case "":
	case KindStatus:
		if r.SealedBy != SealedByHandler || r.From == "" || r.Signature == "" {
			return bad("a status message is a signed reply")
		}
		if !ValidName(r.Status) {
			return bad("a status message names a status")
		}
		if len(r.Answers) != 1 || r.Answers[0].Field != "message" || !validStatusText(r.Answers[0].Value) {
			return bad("a status message is one line of 1 to %d bytes", MaxStatusText)
		}
		if len(r.Attachments) > 0 {
			return bad("a status message has no attachments")
		}
	case KindSurvey:
		if r.SealedBy != SealedByClient && r.SealedBy != SealedByServer {
			return bad("a survey answer is a follow-up")
		}
		if _, _, err := ParseSurvey(r); err != nil {
			return fmt.Errorf("%w: %w", ErrReportMembers, err)
		}
	default:
		return bad("unknown kind")
	}
	if r.Kind != KindStatus && (r.Status != "" || r.Survey) {
		return bad("status and survey only in a status message")
	}
	return nil
}

func validStatusText(s string) bool {
	return s != "" && len(s) <= MaxStatusText && utf8.ValidString(s) && !strings.ContainsAny(s, "\r\n")
}

// NewStatusMessage is the status message telling the submitter of base
// (the case's report) that the case moved to status: a reply of kind
// KindStatus whose one answer is text (the manifest's submitter text,
// Workflow.SubmitterText), asking the satisfaction question when survey is
// set. The caller sets Seq and Recipients, then signs it with SignReply
// (or SignReplyFiles) before sealing it as a reply.
func NewStatusMessage(base *Report, status, text string, survey bool) *Report {
	return &Report{
		Schema:    BundleSchema,
		Desk:      base.Desk,
		Category:  base.Category,
		Language:  base.Language,
		Submitted: SubmittedAt(time.Now()),
		Mailbox:   base.Mailbox,
		Kind:      KindStatus,
		Status:    status,
		Survey:    survey,
		Answers:   []Answer{{Field: "message", Value: text}},
	}
}

// SurveyAnswers are the answers of a survey follow-up: the score, 1 to 5,
// then the comment when there is one (at most MaxSurveyComment bytes).
func SurveyAnswers(score int, comment string) ([]Answer, error) {
	if score < 1 || score > 5 {
		return nil, fmt.Errorf("%w: the score is 1 to 5", ErrSurvey)
	}
	if len(comment) > MaxSurveyComment || !utf8.ValidString(comment) {
		return nil, fmt.Errorf("%w: the comment is at most %d bytes of UTF-8", ErrSurvey, MaxSurveyComment)
	}
	a := []Answer{{Field: "satisfaction", Value: strconv.Itoa(score)}}
	if comment != "" {
		a = append(a, Answer{Field: "comment", Value: comment})
	}
	return a, nil
}

// ParseSurvey reads a survey follow-up's score and comment. It fails with
// ErrSurvey unless r is of kind KindSurvey with exactly the answers
// SurveyAnswers writes and no attachments.
func ParseSurvey(r *Report) (score int, comment string, err error) {
	if r.Kind != KindSurvey {
		return 0, "", fmt.Errorf("%w: not a survey follow-up", ErrSurvey)
	}
	if len(r.Attachments) > 0 {
		return 0, "", fmt.Errorf("%w: a survey answer has no attachments", ErrSurvey)
	}
	a := r.Answers
	if len(a) < 1 || len(a) > 2 || a[0].Field != "satisfaction" || len(a) == 2 && a[1].Field != "comment" {
		return 0, "", fmt.Errorf("%w: answers are satisfaction, then optionally comment", ErrSurvey)
	}
	v := a[0].Value
	if len(v) != 1 || v[0] < '1' || v[0] > '5' {
		return 0, "", fmt.Errorf("%w: the score is 1 to 5", ErrSurvey)
	}
	if len(a) == 2 {
		comment = a[1].Value
		if comment == "" || len(comment) > MaxSurveyComment {
			return 0, "", fmt.Errorf("%w: the comment is 1 to %d bytes", ErrSurvey, MaxSurveyComment)
		}
	}
	return int(v[0] - '0'), comment, nil
}
