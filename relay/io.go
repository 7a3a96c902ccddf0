package relay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/amana-relay/amana/crypto"
)

// peekHeader reads the age header from the start of body, checks it, and
// returns the bytes read so far and the rest of the body.
func peekHeader(body io.Reader, stanzas []string, length int64) (io.Reader, io.Reader, *apiError) {
	var seen bytes.Buffer
	br := bufio.NewReaderSize(io.TeeReader(body, &seen), 4096)
	hdr, err := crypto.ReadAgeHeader(br, crypto.MaxHeaderLen(max(len(stanzas), maxHandlers)+1))
	if err != nil {
		// The header parser reports every failure as "not age"; a client
		// that stalled or went away is told so instead.
		if _, rerr := br.Peek(1); rerr != nil && rerr != io.EOF {
			return nil, nil, errTimeout
		}
		return nil, nil, errNotAge
	}
	if err := hdr.CheckTypes(stanzas); err != nil {
		return nil, nil, errStanzas
	}
	if err := crypto.CheckAgePayload(length - int64(hdr.Len)); err != nil {
		return nil, nil, errTruncated
	}
	return &seen, body, nil
}

func parseOffset(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0 && strconv.FormatInt(n, 10) == s
}

// parseRange understands the single ranges "bytes=N-" and "bytes=N-M". It
// returns the half-open span to send and whether it is partial. A range it
// does not understand is ignored (the whole body is sent, as RFC 9110
// allows); one that starts past the end is not satisfiable (ok is false).
func parseRange(h string, size int64) (start, end int64, partial, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	a, b, dash := strings.Cut(spec, "-")
	start, okA := parseOffset(a)
	if !found || strings.Contains(spec, ",") || !dash || !okA {
		return 0, size, false, true
	}
	if start >= size {
		return 0, 0, false, false
	}
	end = size
	if b != "" {
		last, okB := parseOffset(b)
		if !okB || last < start {
			return 0, size, false, true
		}
		end = min(last+1, size)
	}
	return start, end, true, true
}

// readJSON decodes a request's JSON body, which the route's admission has
// bounded.
func readJSON(r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	return dec.Decode(v) == nil
}

// readChecked reads a body of exactly length bytes into memory, checking
// its age header (stanzas, and that length fits a complete age file)
// before it reads past it.
func readChecked(body io.Reader, stanzas []string, length int64) ([]byte, *apiError) {
	head, rest, aerr := peekHeader(body, stanzas, length)
	if aerr != nil {
		return nil, aerr
	}
	data := make([]byte, length)
	if _, err := io.ReadFull(io.MultiReader(head, rest), data); err != nil {
		if errors.Is(err, errStalled) {
			return nil, errTimeout
		}
		return nil, errBadRequest
	}
	return data, nil
}

var errStalled = errors.New("client stalled")

// progress returns the request body, extending the connection's read
// deadline as bytes arrive: a slow client that keeps sending is served; one
// that stops for IdleTimeout is cut off, and so is one that sends fewer than
// MinBodyRate bytes a second over a whole IdleTimeout window, so that a
// client trickling a byte now and then cannot hold a body slot for ever.
func (s *Server) progress(w http.ResponseWriter, r *http.Request) io.ReadCloser {
	rc := http.NewResponseController(w)
	return &progressReader{r: r.Body, rc: rc, idle: s.cfg.IdleTimeout, floor: s.cfg.MinBodyRate * int64(s.cfg.IdleTimeout/time.Second), now: time.Now}
}

type progressReader struct {
	r     io.ReadCloser
	rc    *http.ResponseController
	idle  time.Duration
	floor int64 // bytes a window must bring; 0 for no floor
	now   func() time.Time

	window time.Time // start of the current window
	got    int64     // bytes read in it
}

func (p *progressReader) Read(b []byte) (int, error) {
	now := p.now()
	if p.window.IsZero() {
		p.window = now
	}
	if now.Sub(p.window) >= p.idle {
		if p.got < p.floor {
			return 0, errStalled
		}
		p.window, p.got = now, 0
	}
	p.rc.SetReadDeadline(now.Add(p.idle))
	n, err := p.r.Read(b)
	p.got += int64(n)
	if err != nil && isTimeout(err) {
		return n, errStalled
	}
	return n, err
}

func (p *progressReader) Close() error { return p.r.Close() }

type progressWriter struct {
	w    io.Writer
	rc   *http.ResponseController
	idle time.Duration
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.rc.SetWriteDeadline(time.Now().Add(p.idle))
	return p.w.Write(b)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
