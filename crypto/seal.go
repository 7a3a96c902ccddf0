package crypto

import (
	"bytes"
	"errors"
	"fmt"
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
func SealReport(recipients []string, rc *Receipt, r *Report, files []File) (io.ReadCloser, int64, error) {
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
// first byte is read. Every File must carry its true Size and SHA256. The
// plaintext exists only in memory, a piece at a time.
func SealBundle(cards []*Card, r *Report, files []File) (io.ReadCloser, int64, error) {
	recips, err := Recipients(cards)
	if err != nil {
		return nil, 0, err
	}
	return SealBundleTo(recips, r, files)
}

// SealBundleTo is SealBundle for any age recipients: a reply goes to the
// thread's handlers and to the submitter's reply recipient.
func SealBundleTo(recips []age.Recipient, r *Report, files []File) (io.ReadCloser, int64, error) {
	if len(recips) == 0 {
		return nil, 0, errors.New("no recipients")
	}
	r.Schema = BundleSchema
	sizes := make([]int64, len(files))
	r.Attachments = make([]Attachment, len(files))
	for i, f := range files {
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

	pr, pw := io.Pipe()
	sw.set(pw)
	go func() {
		n, err := WriteBundle(ew, r, files)
		if err == nil {
			err = ew.Close()
		}
		if err == nil && n != plain {
			err = fmt.Errorf("bundle is %d bytes, expected %d", n, plain)
		}
		pw.CloseWithError(err)
	}()
	return &sealed{Reader: io.MultiReader(head, pr), pr: pr}, total, nil
}

type sealed struct {
	io.Reader
	pr *io.PipeReader
}

// Close stops the encryption goroutine if the caller gives up early.
func (s *sealed) Close() error { return s.pr.Close() }

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
