package crypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"filippo.io/age"
)

// Recipients returns the age recipients of cards, in order.
func Recipients(cards []*Card) ([]age.Recipient, error) {
	if len(cards) == 0 {
		return nil, errors.New("no recipients")
	}
	out := make([]age.Recipient, len(cards))
	for i, c := range cards {
		r, err := c.AgeRecipient()
		if err != nil {
			return nil, fmt.Errorf("handler %q: %w", c.Name, err)
		}
		out[i] = r
	}
	return out, nil
}

// RecipientsOf returns the age recipient strings of cards, in order.
func RecipientsOf(cards []*Card) []string {
	out := make([]string, len(cards))
	for i, c := range cards {
		out[i] = c.Recipient
	}
	return out
}

// SealReport seals r, a submitter's report or follow-up in the thread rc
// opens, for recipients (age recipients as cards and replies name them).
// It is the one place a report is sealed, by the browser's relay page or
// by amana: it names rc's mailbox in r, and the reply recipient derived
// from rc, post-quantum when the first recipient is, so that the desk's
// answers are as strong as the report. The caller fills in the rest of r.
func SealReport(recipients []string, rc *Receipt, r *Report, files []File) (*Sealed, int64, error) {
	if len(recipients) == 0 {
		return nil, 0, errors.New("no recipients")
	}
	recips := make([]age.Recipient, len(recipients))
	for i, s := range recipients {
		a, err := ParseRecipient(s)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrRecipient, err)
		}
		recips[i] = a
	}
	reply, err := rc.ReplyIdentity(PostQuantumRecipient(recipients[0]))
	if err != nil {
		return nil, 0, err
	}
	r.ReplyRecipient, r.Mailbox = reply.Recipient(), rc.MailboxID()
	return SealBundleTo(recips, r, files)
}

// ErrRecipient is an age recipient that does not parse.
var ErrRecipient = errors.New("invalid recipient")

// SealBundle encrypts a bundle to the cards' recipients and returns the
// ciphertext as a stream together with its exact length, known before the
// first byte is read. Every File must carry its true Size, and its SHA256
// unless r is sealed by the client (OpenFile). The plaintext exists only in
// memory, a piece at a time.
func SealBundle(cards []*Card, r *Report, files []File) (*Sealed, int64, error) {
	recips, err := Recipients(cards)
	if err != nil {
		return nil, 0, err
	}
	return SealBundleTo(recips, r, files)
}

// SealBundleTo is SealBundle for any age recipients: a reply goes to the
// thread's handlers and to the submitter's reply recipient.
func SealBundleTo(recips []age.Recipient, r *Report, files []File) (*Sealed, int64, error) {
	if len(recips) == 0 {
		return nil, 0, errors.New("no recipients")
	}
	r.Schema = BundleSchema
	sizes := make([]int64, len(files))
	r.Attachments = make([]Attachment, len(files))
	for i, f := range files {
		if err := checkFileSum(r, f.Attachment); err != nil {
			return nil, 0, err
		}
		sizes[i] = f.Size
		r.Attachments[i] = f.Attachment
	}
	if err := r.CheckMembers(); err != nil {
		return nil, 0, err
	}
	rep, err := MarshalReport(r)
	if err != nil {
		return nil, 0, err
	}
	plain := PaddedSize(TarSize(len(rep), sizes))

	head := &bytes.Buffer{}
	sw := &switchWriter{w: head}
	ew, err := age.Encrypt(sw, recips...)
	if err != nil {
		return nil, 0, fmt.Errorf("encrypting bundle: %w", err)
	}
	// age.Encrypt has written the header and nonce; the payload follows.
	total := int64(head.Len()) - 16 + AgePayloadSize(plain)
	s := &Sealed{head: head.Bytes(), stop: make(chan struct{}), bufSize: int(min(sealBuf, total))}
	s.payload = func(w io.Writer) error {
		sw.set(w)
		n, err := WriteBundle(ew, r, files)
		if err == nil {
			err = ew.Close()
		}
		if err == nil && n != plain {
			err = fmt.Errorf("bundle is %d bytes, expected %d", n, plain)
		}
		return err
	}
	return s, total, nil
}

// Sizes of the sealing pipeline: sealBufs buffers of sealBuf bytes
// between the encryption, the optional hash and the reader, so that each
// runs ahead of the next by up to a few MiB and none waits on the other
// buffer by buffer, as io.Pipe's lock-step would make them.
const (
	sealBuf  = 1 << 20
	sealBufs = 4
)

// SealMemory bounds what one seal holds in memory besides the files it
// reads, however large they are: the pipeline's buffers (allocated as
// needed, none larger than the ciphertext), writeEntry's copy buffer,
// the report and report.json marshalled from it, age's header and its
// STREAM chunk buffers. The relay reserves it for every seal it makes.
var SealMemory = int64(sealBufs*sealBuf+copyBufSize+2*MaxReportLen+2*(ageChunk+ageTag)) + int64(MaxHeaderLen(MaxHandlers+1))

// age's STREAM chunk and its tag: its writer holds one chunk of each.
const (
	ageChunk = 64 << 10
	ageTag   = 16
)

// errSealClosed ends the pipeline's goroutines after Close.
var errSealClosed = errors.New("sealed bundle closed")

// Sealed is a sealed bundle as a stream of its ciphertext. The first Read
// starts the encryption on a goroutine of its own, which reads the files
// and encrypts into a few 1 MiB buffers ahead of the reader (at most
// sealBufs of them, whatever the files' sizes); with HashCiphertext a
// second goroutine takes the ciphertext's SHA-256 between the two, on the
// other core. The plaintext exists only in memory, a piece at a time.
type Sealed struct {
	head    []byte                  // age's header and nonce
	bufSize int                     // the pipeline's buffers: sealBuf, or the whole ciphertext if smaller
	payload func(w io.Writer) error // writes the rest of the ciphertext to w
	hash    hash.Hash               // HashCiphertext's; nil without it

	once    sync.Once
	started bool          // start has run: the hash can no longer be asked for
	stop    chan struct{} // closed by Close
	closing sync.Once
	out     chan []byte // ciphertext buffers, in order, to Read
	free    chan []byte // buffers Read is done with
	// err is why the stream ended (nil: its end); sum the ciphertext's
	// SHA-256. Both are written before out is closed.
	err error
	sum []byte
	cur []byte // what is left of the buffer Read is in
	buf []byte // that buffer, to give back
	eof bool
}

// HashCiphertext makes the stream take the ciphertext's SHA-256 as it
// goes, on a goroutine beside the encryption; SHA256 returns it once Read
// has returned io.EOF. It must be called before the first Read.
func (s *Sealed) HashCiphertext() {
	if s.started {
		panic("crypto: HashCiphertext after the first Read of a sealed bundle")
	}
	s.hash = sha256.New()
}

// SHA256 is the ciphertext's SHA-256, lower-case hex, when HashCiphertext
// was called before the first Read, once every byte has been read: a
// reader that stopped at the announced length (io.ReadFull) need not have
// seen io.EOF; SHA256 waits for the end, and fails if any byte is left.
func (s *Sealed) SHA256() (string, error) {
	if s.hash == nil {
		return "", errors.New("the sealed bundle's SHA-256 was not taken (HashCiphertext)")
	}
	if !s.eof {
		switch n, err := s.Read(make([]byte, 1)); {
		case n > 0:
			return "", errors.New("the sealed bundle was not read to its end")
		case err != io.EOF:
			return "", err
		}
	}
	return hex.EncodeToString(s.sum), nil
}

func (s *Sealed) start() {
	s.started = true
	s.out = make(chan []byte, sealBufs)
	// Buffers are made as the encryption needs them (bufWriter), so a
	// small bundle takes one of its own size.
	s.free = make(chan []byte, sealBufs)
	filled := s.out
	if s.hash != nil {
		filled = make(chan []byte, sealBufs)
		go s.hashStage(filled)
	}
	go func() {
		w := &bufWriter{s: s, to: filled}
		_, err := w.Write(s.head)
		if err == nil {
			err = s.payload(w)
		}
		if err == nil {
			err = w.flush()
		}
		s.err = err
		close(filled)
	}()
}

// hashStage hashes each buffer of ciphertext, then hands it on to Read.
func (s *Sealed) hashStage(filled <-chan []byte) {
	for b := range filled {
		s.hash.Write(b)
		select {
		case s.out <- b:
		case <-s.stop:
			return
		}
	}
	s.sum = s.hash.Sum(nil)
	close(s.out)
}

// Read reads the ciphertext.
func (s *Sealed) Read(p []byte) (int, error) {
	select {
	case <-s.stop:
		return 0, errSealClosed
	default:
	}
	s.once.Do(s.start)
	for len(s.cur) == 0 {
		if s.buf != nil {
			s.free <- s.buf[:0]
			s.buf = nil
		}
		select {
		case b, ok := <-s.out:
			if !ok {
				if s.err != nil {
					return 0, s.err
				}
				s.eof = true
				return 0, io.EOF
			}
			s.cur, s.buf = b, b
		case <-s.stop:
			return 0, errSealClosed
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// Close stops the encryption if the caller gives up early.
func (s *Sealed) Close() error {
	s.closing.Do(func() { close(s.stop) })
	return nil
}

// bufWriter fills the pipeline's buffers and sends each on when full.
type bufWriter struct {
	s    *Sealed
	to   chan<- []byte
	b    []byte
	made int // buffers made so far, at most sealBufs
}

// next takes a buffer Read is done with, or makes one while fewer than
// sealBufs exist.
func (w *bufWriter) next() error {
	select {
	case w.b = <-w.s.free:
		return nil
	default:
	}
	if w.made < sealBufs {
		w.made++
		w.b = make([]byte, 0, max(w.s.bufSize, 1))
		return nil
	}
	select {
	case w.b = <-w.s.free:
		return nil
	case <-w.s.stop:
		return errSealClosed
	}
}

func (w *bufWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if w.b == nil {
			if err := w.next(); err != nil {
				return n, err
			}
		}
		k := copy(w.b[len(w.b):cap(w.b)], p)
		w.b, p, n = w.b[:len(w.b)+k], p[k:], n+k
		if len(w.b) == cap(w.b) {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (w *bufWriter) flush() error {
	if len(w.b) == 0 {
		return nil
	}
	select {
	case w.to <- w.b:
		w.b = nil
		return nil
	case <-w.s.stop:
		return errSealClosed
	}
}

type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	return w.Write(p)
}

// OpenBundle decrypts a bundle with the given identities and returns a
// reader that has already checked report.json.
func OpenBundle(src io.Reader, ids ...age.Identity) (*BundleReader, error) {
	dr, err := age.Decrypt(src, ids...)
	if err != nil {
		return nil, fmt.Errorf("decrypting bundle: %w", err)
	}
	return NewBundleReader(dr)
}
