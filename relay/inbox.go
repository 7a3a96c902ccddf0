package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/store"
)

// parseInboxQuery reads the query of GET /api/v1/inbox: after, "" or a
// submission ID (32 lower-case hex characters), and limit, canonical
// decimal from 1 to api.InboxPageMax, which is also its default. Either
// given twice, a malformed query or a bad value fails (ok is false). Other
// parameters are ignored, as on every route.
func parseInboxQuery(raw string) (after string, limit int, ok bool) {
	q, err := url.ParseQuery(raw)
	if err != nil || len(q["after"]) > 1 || len(q["limit"]) > 1 {
		return "", 0, false
	}
	after, limit = q.Get("after"), api.InboxPageMax
	if after != "" && !api.ValidID(after) {
		return "", 0, false
	}
	if l, given := q["limit"]; given {
		n, err := strconv.Atoi(l[0])
		if err != nil || n < 1 || n > api.InboxPageMax || strconv.Itoa(n) != l[0] {
			return "", 0, false
		}
		limit = n
	}
	return after, limit, true
}

// inbox lists one page of the caller's inbox in ID order, starting after
// the ID the query names (?after=ID&limit=N); the answer's next says where
// the following page starts, and is omitted on the last one.
func (s *Server) inbox(w http.ResponseWriter, r *http.Request, who *caller) {
	after, limit, ok := parseInboxQuery(r.URL.RawQuery)
	if !ok {
		writeError(w, errBadRequest)
		return
	}
	// The spool lists only what waits for the caller's key (its index of
	// routes), so a page costs what this handler has pending, not what
	// the spool holds. The desks are read before, never inside the
	// spool's transaction (publish holds s.mu while it writes the spool).
	desks := s.deskSnapshot()
	subs, next, err := s.spool.RoutePage(who.keyID, after, limit, func(sub *store.Submission) bool { return mayRead(desks, who, sub) })
	if err != nil {
		s.storeError(w, err)
		return
	}
	items := []api.Item{}
	for _, sub := range subs {
		items = append(items, api.Item{ID: sub.ID, Desk: sub.Desk, Category: sub.Category, Kind: wireKind(sub.Kind), Mailbox: sub.Mailbox, Size: sub.Size, SHA256: sub.SHA256, Received: sub.Received.UTC().Format(time.RFC3339)})
	}
	writeJSON(w, 200, api.Inbox{Submissions: items, Next: next})
}

// wireKinds maps the kinds the spool keeps to the inbox's: the record
// format and the wire format are two, and this is where they meet.
var wireKinds = map[string]string{
	"":                 "",
	store.KindSelf:     api.KindSelf,
	store.KindReply:    api.KindReply,
	store.KindFollowup: api.KindFollowup,
}

// wireKind is the inbox kind of a stored one. A kind the relay does not
// know (a record from a newer relay's spool) is passed on as it is, so
// that the client, not the relay, decides what it cannot open.
func wireKind(k string) string {
	if w, ok := wireKinds[k]; ok {
		return w
	}
	return k
}

// mayRead reports whether the caller may see sub: it was routed to the
// caller's key, the caller has not acked it, and the key is still a handler
// of the desk.
func mayRead(desks map[string]*desk, who *caller, sub *store.Submission) bool {
	if !slices.Contains(sub.Routes, who.keyID) || slices.Contains(sub.Acks, who.keyID) {
		return false
	}
	d := desks[sub.Desk]
	return d != nil && d.m.Handler(who.keyID) != nil
}

// deskSnapshot is the served desks now, to consult inside a spool
// transaction.
func (s *Server) deskSnapshot() map[string]*desk {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.desks)
}

// parseAckBatch reads the body of POST /api/v1/acks: exactly
// {"ids":[ID,…]} (api.AckBatch), 1 to api.MaxAckBatch submission IDs, each
// 32 lower-case hex characters and each once, and nothing after it. Any
// other member, a duplicate, an empty list or a malformed ID fails.
func parseAckBatch(body []byte) ([]string, bool) { return parseIDList(body, api.MaxAckBatch) }

// parseIDList is parseAckBatch with at most max IDs.
func parseIDList(body []byte, max int) ([]string, bool) {
	if len(body) > api.MaxAckBody {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var b api.AckBatch
	if err := dec.Decode(&b); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	if len(b.IDs) == 0 || len(b.IDs) > max {
		return nil, false
	}
	seen := make(map[string]bool, len(b.IDs))
	for _, id := range b.IDs {
		if !api.ValidID(id) || seen[id] {
			return nil, false
		}
		seen[id] = true
	}
	return b.IDs, true
}

// ackBatch acknowledges many submissions for the caller in one durable
// transaction (POST /api/v1/acks): each as the one-ID route would, by the
// same rules of who may, and answers one item per ID.
func (s *Server) ackBatch(w http.ResponseWriter, r *http.Request, who *caller) {
	ids, ok := parseAckBatch(who.body)
	if !ok {
		writeError(w, errBadRequest)
		return
	}
	desks := s.deskSnapshot()
	may := func(sub *store.Submission) bool {
		d := desks[sub.Desk]
		return d != nil && d.m.Handler(who.keyID) != nil && slices.Contains(sub.Routes, who.keyID)
	}
	live := func(sub *store.Submission, route string) bool {
		d := desks[sub.Desk]
		return d != nil && d.m.Handler(route) != nil
	}
	res, err := s.spool.AckMany(ids, who.keyID, may, live)
	if err != nil {
		s.storeError(w, err)
		return
	}
	out := api.AckBatchResult{Acks: make([]api.AckItem, len(ids))}
	for i, a := range res {
		out.Acks[i] = api.AckItem{ID: ids[i], Deleted: a.Deleted, Waiting: a.Waiting}
		if a.Err != nil {
			out.Acks[i] = api.AckItem{ID: ids[i], Error: errNotFound.Body.Code}
		}
	}
	writeJSON(w, 200, out)
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request, who *caller) *store.Submission {
	sub, err := s.spool.Submission(r.PathValue("id"))
	if err != nil || !slices.Contains(sub.Routes, who.keyID) || s.desk(sub.Desk) == nil || s.desk(sub.Desk).m.Handler(who.keyID) == nil {
		writeError(w, errNotFound)
		return nil
	}
	return sub
}

func (s *Server) download(w http.ResponseWriter, r *http.Request, who *caller) {
	sub := s.lookup(w, r, who)
	if sub == nil {
		return
	}
	start, end, partial, ok := parseRange(r.Header.Get("Range"), sub.Size)
	if !ok {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", sub.Size))
		writeError(w, errRange)
		return
	}
	rd, err := s.spool.OpenSubmission(sub.ID, start)
	if err != nil {
		s.storeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Amana-SHA256", sub.SHA256)
	h.Set("Content-Length", fmt.Sprint(end-start))
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, sub.Size))
		w.WriteHeader(206)
	} else {
		w.WriteHeader(200)
	}
	pw := &progressWriter{w: w, rc: http.NewResponseController(w), idle: s.cfg.IdleTimeout}
	// A handler that goes away mid-download resumes with Range; there is
	// nothing to tell anyone.
	io.Copy(pw, io.LimitReader(rd, end-start))
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request, who *caller) {
	sub := s.lookup(w, r, who)
	if sub == nil {
		return
	}
	// The routes that may still pull it, as mayRead decides: a key no
	// longer a handler of the desk is not waited for.
	d := s.desk(sub.Desk)
	if d == nil {
		writeError(w, errNotFound)
		return
	}
	deleted, waiting, err := s.spool.Ack(sub.ID, who.keyID, func(route string) bool { return d.m.Handler(route) != nil })
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, 200, api.Ack{Deleted: deleted, Waiting: waiting})
}

// bulk streams many small submissions in one answer (POST /api/v1/bulk):
// the body names them as for ackBatch, at most api.BulkMaxItems; each must
// be at most api.BulkMaxItem bytes and all together at most
// api.BulkMaxBytes, else 400 before anything is sent. The answer holds one
// chunk of a submission in memory at a time. One the caller may not read
// (or deleted meanwhile) is answered "ID -"; one deleted while it is sent
// ends the answer early, and the client fetches it alone.
func (s *Server) bulk(w http.ResponseWriter, r *http.Request, who *caller) {
	ids, ok := parseIDList(who.body, api.BulkMaxItems)
	if !ok {
		writeError(w, errBadRequest)
		return
	}
	desks := s.deskSnapshot()
	subs := make([]*store.Submission, len(ids))
	var total int64
	for i, id := range ids {
		sub, err := s.spool.Submission(id)
		if err != nil {
			continue
		}
		d := desks[sub.Desk]
		if d == nil || d.m.Handler(who.keyID) == nil || !slices.Contains(sub.Routes, who.keyID) {
			continue
		}
		if sub.Size > api.BulkMaxItem {
			writeError(w, errBadRequest)
			return
		}
		total += sub.Size
		subs[i] = sub
	}
	if total > api.BulkMaxBytes {
		writeError(w, errBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(200)
	pw := &progressWriter{w: w, rc: http.NewResponseController(w), idle: s.cfg.IdleTimeout}
	if _, err := io.WriteString(pw, api.BulkMagic); err != nil {
		return
	}
	for i, sub := range subs {
		var rd io.Reader
		if sub != nil {
			var err error
			if rd, err = s.spool.OpenSubmission(sub.ID, 0); err != nil {
				sub = nil
			}
		}
		if sub == nil {
			if _, err := fmt.Fprintf(pw, "%s -\n", ids[i]); err != nil {
				return
			}
			continue
		}
		if _, err := fmt.Fprintf(pw, "%s %d\n", sub.ID, sub.Size); err != nil {
			return
		}
		// A submission deleted meanwhile ends the answer short: the
		// client sees it cut and fetches what is left alone.
		if n, err := io.Copy(pw, io.LimitReader(rd, sub.Size)); err != nil || n != sub.Size {
			return
		}
	}
	io.WriteString(pw, "end\n")
}
