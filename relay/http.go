package relay

import (
	"log"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/amana-relay/amana/relay/api"
)

// HTTPServer returns an http.Server for h with the relay's bounds: small
// headers, header and idle timeouts. Bodies are bounded per route, and a
// request that stalls for IdleTimeout is ended.
func (s *Server) HTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(&scrubber{eventf: s.cfg.Eventf}, "", 0),
		ConnContext:       circuitContext,
	}
}

// scrubber passes net/http's own error lines (a panic, a bad connection) to
// Eventf with every network address replaced, since those lines name the
// client's address.
type scrubber struct{ eventf func(string, ...any) }

var addrRE = regexp.MustCompile(`\[[0-9A-Fa-f:.%a-z]+\](:\d+)?|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?|\b[a-z2-7]{56}\.onion\b`)

func (s *scrubber) Write(p []byte) (int, error) {
	s.eventf("http: %s", addrRE.ReplaceAllString(strings.TrimSpace(string(p)), "(address)"))
	return len(p), nil
}

// Serve serves h on ln until ln is closed.
func (s *Server) Serve(ln net.Listener, h http.Handler) error {
	return s.HTTPServer(h).Serve(ln)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap sets the headers every answer carries and logs the route pattern and
// status only: never the path (it holds tokens), a body or an address.
func (s *Server) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		pattern := r.Pattern
		if pattern == "" {
			pattern = "(no route)"
		}
		s.cfg.Logf("%s %d", pattern, sw.status)
		s.answers[kindOf(sw.status)].Add(1)
	})
}

// Answers counts the answers the relay has given since it started, by
// kind. It says nothing of which desk or route.
type Answers struct {
	Success     int64 // 1xx, 2xx and 3xx
	ClientError int64 // 4xx other than busy
	Busy        int64 // 429 and 503: a limit was reached
	StorageFull int64 // 507
	ServerError int64 // other 5xx
}

const (
	answerSuccess = iota
	answerClientError
	answerBusy
	answerStorageFull
	answerServerError
	answerKinds
)

func kindOf(status int) int {
	switch {
	case status == 0 || status < 400:
		return answerSuccess
	case status == 429 || status == 503:
		return answerBusy
	case status == 507:
		return answerStorageFull
	case status >= 500:
		return answerServerError
	}
	return answerClientError
}

// Answers returns the counts of answers given so far.
func (s *Server) Answers() Answers {
	return Answers{Success: s.answers[answerSuccess].Load(), ClientError: s.answers[answerClientError].Load(),
		Busy: s.answers[answerBusy].Load(), StorageFull: s.answers[answerStorageFull].Load(), ServerError: s.answers[answerServerError].Load()}
}

func notFound(w http.ResponseWriter, r *http.Request) { writeError(w, errNotFound) }

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, api.Health{Status: "ok"})
}
