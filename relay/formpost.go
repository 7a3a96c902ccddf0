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
}

// wipe overwrites the plaintext buffers. Go may have copied them elsewhere
// in memory meanwhile; this only shortens how long they stay.
func (f *formPost) wipe() {
	clear(f.arena[:cap(f.arena)])
	for i := range f.answers {
		f.answers[i].Value = ""
	}
	f.values, f.receipt = nil, ""
}

// read appends a part to the arena and returns its bytes; a part of more
// than limit bytes is errFormTooLarge. The arena never grows: it has the
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
			return nil, errFormTooLarge
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
func readForm(r *http.Request, budget int64, wantAge bool) (*formPost, error) {
	mr, err := r.MultipartReader()
	if err != nil || r.ContentLength < 0 {
		return nil, errFormBad
	}
	f := &formPost{values: map[string][]string{}, arena: make([]byte, 0, r.ContentLength)}
	var text int64
	for parts := 0; ; parts++ {
		if parts > maxFormParts {
			return f, errFormBad
		}
		part, err := mr.NextPart()
		if err == io.EOF {
			return f, nil
		}
		if err != nil {
			return f, err
		}
		name := part.FormName()
		switch {
		case name == "files" || name == "age" && wantAge:
			b, err := f.read(part, budget)
			if err != nil {
				return f, err
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
			if len(f.files) > crypto.MaxAttachments {
				return f, errFormTooLarge
			}
		case name == "lang" || name == "category" || name == "sealed" || name == "receipt" || name == "route" || strings.HasPrefix(name, "f."):
			b, err := f.read(part, maxFieldBytes)
			if err != nil {
				return f, err
			}
			if text += int64(len(b)); text > maxAnswerBytes {
				return f, errFormTooLarge
			}
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
