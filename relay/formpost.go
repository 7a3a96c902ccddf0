package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/store"
)

// errForm is a submitter-facing failure of a form post: the catalogue key
// of the message and the status.
type errForm struct {
	key    string
	status int
}

func (e *errForm) Error() string { return e.key }

var (
	errFormTooLarge = &errForm{"error_too_large", 413}
	errFormBad      = &errForm{"error_bad", 400}
	errFormFull     = &errForm{"error_full", 507}
	errFormNotAge   = &errForm{"error_not_age", 400}
)

// formError maps any failure to what the submitter is told; internal text
// goes only to the event log.
func (s *Server) formError(err error) *errForm {
	var fe *errForm
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &fe):
		return fe
	case errors.As(err, &mbe):
		return errFormTooLarge
	case errors.Is(err, store.ErrQuota), errors.Is(err, store.ErrStorage):
		if errors.Is(err, store.ErrStorage) {
			s.cfg.Eventf("storage error: %v", err)
		}
		return errFormFull
	case errors.Is(err, errStalled):
		return errFormBad
	}
	s.cfg.Eventf("form submission failed: %v", scrubbed(err))
	return errFormBad
}

// scrubbed keeps only the type of an error, never its text, which could
// carry what a submitter typed.
func scrubbed(err error) string { return fmt.Sprintf("%T", err) }

// formPost is a parsed no-JavaScript submission.
type formPost struct {
	lang     string
	category string
	answers  []crypto.Answer
	values   map[string][]string
	files    []crypto.File
	arena    []byte // every part's bytes, one after the other
	age      []byte // the self-encrypted file, for /self
	receipt  string // the receipt words, on the no-JS check pages
	route    string // "desk|category" of a first follow-up
	reply    string // the reply ID and the file's index, of a download
	file     string
	// A survey answer on the no-JavaScript check page: kind "survey",
	// the score as sent, and the optional comment.
	kind, satisfaction, comment string
	// over is the limit a post went past, or "": the post is refused,
	// and the page shows again what text it kept, saying which limit.
	over overLimit
}

// overLimit names the limit a no-JavaScript post went past.
type overLimit uint8

const (
	withinLimits  overLimit = iota
	overFiles               // the files together, or the whole post (admission cut it)
	overFileCount           // crypto.MaxAttachments
	overField               // one text field, maxFieldBytes: kept cut at that length
	overText                // the text fields together, maxAnswerBytes
)

// wipe overwrites the plaintext buffers. Go may have copied them elsewhere
// in memory meanwhile; this only shortens how long they stay.
func (f *formPost) wipe() {
	clear(f.arena[:cap(f.arena)])
	for i := range f.answers {
		f.answers[i].Value = ""
	}
	f.values, f.receipt, f.comment, f.satisfaction = nil, "", "", ""
}

// read appends a part to the arena and returns its bytes; a part of more
// than limit bytes is errFormTooLarge, with the bytes read so far (more
// than limit). The arena never grows: it has the
// post's declared length, which the parts' bytes cannot reach, since the
// multipart framing takes some of it and the admission's reader cuts a
// body longer than declared.
func (f *formPost) read(part io.Reader, limit int64) ([]byte, error) {
	start := len(f.arena)
	for {
		if len(f.arena) == cap(f.arena) {
			return nil, errFormBad
		}
		n, err := part.Read(f.arena[len(f.arena):cap(f.arena)])
		f.arena = f.arena[:len(f.arena)+n]
		if int64(len(f.arena)-start) > limit {
			return f.arena[start:len(f.arena):len(f.arena)], errFormTooLarge
		}
		if err == io.EOF {
			return f.arena[start:len(f.arena):len(f.arena)], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Bounds of a no-JavaScript post.
const (
	maxFieldBytes  = 64 << 10
	maxAnswerBytes = 1 << 20
	maxFormParts   = 300
)

// readForm streams a multipart post part by part, keeping text fields and
// files in memory within budget bytes, never on disk (no ParseMultipartForm,
// no FormFile). Every part is read into one buffer of the post's declared
// length, which the route's admission reserved, so the post holds no more
// memory than that however its parts are cut.
//
// A post past a limit is errFormTooLarge with f.over saying which, and f
// still holds the text it could keep, for the page to show again: a file
// past the budget is dropped (its bytes cleared and the rest of it read
// past), a text field past maxFieldBytes is kept cut at that length, and
// reading goes on to the text fields after them. A post the admission cut
// short (admitOversized) ends where it was cut.
func readForm(r *http.Request, budget int64, wantAge bool) (*formPost, error) {
	mr, err := r.MultipartReader()
	if err != nil || r.ContentLength < 0 {
		return nil, errFormBad
	}
	f := &formPost{values: map[string][]string{}, arena: make([]byte, 0, r.ContentLength)}
	if oversized(r) {
		f.over = overFiles
	}
	done := func(err error) (*formPost, error) {
		var mbe *http.MaxBytesError
		switch {
		case err == nil && f.over != withinLimits, errors.As(err, &mbe) && f.over != withinLimits:
			return f, errFormTooLarge
		case errors.As(err, &mbe):
			f.over = overFiles
			return f, errFormTooLarge
		}
		return f, err
	}
	var text int64
	for parts := 0; ; parts++ {
		if parts > maxFormParts {
			return f, errFormBad
		}
		part, err := mr.NextPart()
		if err == io.EOF {
			return done(nil)
		}
		if err != nil {
			return done(err)
		}
		name := part.FormName()
		switch {
		case name == "files" || name == "age" && wantAge:
			start := len(f.arena)
			b, err := f.read(part, budget)
			if err == errFormTooLarge || err == nil && name == "files" && len(b) > 0 && len(f.files) == crypto.MaxAttachments {
				// Dropped: the file's bytes cleared, the rest of it
				// read past, so that the text after it is kept.
				if err == errFormTooLarge {
					f.over = overFiles
				} else if f.over != overFiles {
					f.over = overFileCount
				}
				clear(f.arena[start:])
				f.arena = f.arena[:start]
				if _, err := io.Copy(io.Discard, part); err != nil {
					return done(err)
				}
				budget = -1 // no later file fits either
				continue
			}
			if err != nil {
				return done(err)
			}
			budget -= int64(len(b))
			if name == "age" {
				f.age = b
				continue
			}
			if part.FileName() == "" && len(b) == 0 {
				continue // the browser's empty file input
			}
			sum := sha256.Sum256(b)
			typ := part.Header.Get("Content-Type")
			if mt, _, err := mime.ParseMediaType(typ); err != nil || len(typ) > 200 {
				typ = "application/octet-stream"
			} else {
				typ = mt
			}
			fname := filepath.Base(strings.ReplaceAll(part.FileName(), "\\", "/")) // old browsers send a path
			f.files = append(f.files, crypto.File{
				Attachment: crypto.Attachment{Name: fname, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Type: typ},
				Body:       bytes.NewReader(b),
			})
		case name == "lang" || name == "category" || name == "sealed" || name == "receipt" || name == "route" ||
			name == "reply" || name == "file" || name == "kind" || name == "satisfaction" || name == "comment" ||
			strings.HasPrefix(name, "f."):
			start := len(f.arena)
			b, err := f.read(part, maxFieldBytes)
			if err == errFormTooLarge {
				// Kept cut at the limit, on a character's edge; the
				// rest is read past.
				b = b[:maxFieldBytes]
				for len(b) > 0 && !utf8.Valid(b) {
					b = b[:len(b)-1]
				}
				f.arena = f.arena[:start+len(b)]
				if f.over == withinLimits {
					f.over = overField
				}
				if _, err := io.Copy(io.Discard, part); err != nil {
					return done(err)
				}
			} else if err != nil {
				return done(err)
			}
			if text+int64(len(b)) > maxAnswerBytes {
				if f.over == withinLimits || f.over == overField {
					f.over = overText
				}
				clear(f.arena[start:])
				f.arena = f.arena[:start]
				continue
			}
			text += int64(len(b))
			v := strings.ReplaceAll(string(b), "\r\n", "\n")
			switch {
			case name == "lang":
				f.lang = v
			case name == "category":
				f.category = v
				f.values["category"] = []string{v}
			case name == "sealed":
			case name == "receipt":
				f.receipt = v
			case name == "route":
				f.route = v
			case name == "reply":
				f.reply = v
			case name == "file":
				f.file = v
			case name == "kind":
				f.kind = v
			case name == "satisfaction":
				f.satisfaction = v
			case name == "comment":
				f.comment = v
			default:
				id := strings.TrimPrefix(name, "f.")
				f.values[name] = append(f.values[name], v)
				if v != "" {
					f.answers = append(f.answers, crypto.Answer{Field: id, Value: v})
				}
			}
		default:
			io.Copy(io.Discard, io.LimitReader(part, maxFieldBytes))
		}
	}
}

// validAnswers accepts only answers to the form's own fields and, for
// choices, only its options: a handler never sees a question the desk did
// not ask.
func validAnswers(fields []crypto.Field, answers []crypto.Answer) bool {
	byID := map[string]*crypto.Field{}
	for i := range fields {
		byID[fields[i].ID] = &fields[i]
	}
	count := map[string]int{}
	for _, a := range answers {
		f, ok := byID[a.Field]
		if !ok || f.Type == crypto.FieldFile || f.Type == crypto.FieldCategory {
			return false
		}
		count[a.Field]++
		switch f.Type {
		case crypto.FieldChoice, crypto.FieldMultiChoice:
			if f.Type == crypto.FieldChoice && count[a.Field] > 1 {
				return false
			}
			found := false
			for _, o := range f.Options {
				found = found || o.ID == a.Value
			}
			if !found {
				return false
			}
		default:
			if count[a.Field] > 1 {
				return false
			}
		}
	}
	return true
}
