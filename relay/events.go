package relay

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/store"
)

// The case journal's routes (docs/protocol.md §10.15): handlers post
// events to each other through the relay, which holds them as opaque
// ciphertext. The relay checks who may post what to whom from the desk's
// manifest, and the age header's stanzas against those recipients; it
// never sees a case's ID or anything a handler typed.

// eventQuery is the query of POST /api/v1/desks/{desk}/events.
type eventQuery struct {
	category string // "" for the desk's default route
	part     string // api.PartCase, api.PartFacts or api.PartShare
	to       string // the key ID a share goes to; "" for the other parts
}

// parseEventQuery reads the query of an event post: category (at most
// once; absent is the empty category), part (exactly once: case, facts or
// share) and to (exactly once for a share, a key ID of 43 base64url
// characters; never for the other parts). Other parameters are ignored, as
// on every route.
func parseEventQuery(raw string) (eventQuery, bool) {
	q, err := url.ParseQuery(raw)
	if err != nil || len(q["category"]) > 1 || len(q["part"]) != 1 || len(q["to"]) > 1 {
		return eventQuery{}, false
	}
	eq := eventQuery{category: q.Get("category"), part: q.Get("part"), to: q.Get("to")}
	if len(eq.category) > maxCategoryLen {
		return eventQuery{}, false
	}
	switch eq.part {
	case api.PartCase, api.PartFacts:
		if _, given := q["to"]; given {
			return eventQuery{}, false
		}
	case api.PartShare:
		if !validKeyID(eq.to) {
			return eventQuery{}, false
		}
	default:
		return eventQuery{}, false
	}
	return eq, true
}

// maxCategoryLen bounds a category in a query; a manifest's are shorter.
const maxCategoryLen = 256

// validKeyID reports whether id has the form of a key ID (crypto §5.4):
// an Ed25519 public key, 43 base64url characters without padding.
func validKeyID(id string) bool {
	if len(id) != 43 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// eventKinds maps a posted part to the kind the spool stores it as.
var eventKinds = map[string]string{
	api.PartCase:  store.KindEvent,
	api.PartFacts: store.KindFacts,
	api.PartShare: store.KindShare,
}

// wireEventKinds maps the kinds of stored events to the wire's.
var wireEventKinds = map[string]string{
	store.KindEvent: api.KindEvent,
	store.KindFacts: api.KindFacts,
	store.KindShare: api.KindShare,
}

// eventTargets decides who an event part goes to, by the desk's manifest:
// the cards the ciphertext must be encrypted to, in order. The caller must
// be a handler of the desk on the category's route; a case part goes to
// the whole route, a facts part to the desk's coordinators, a share to one
// other handler on the route.
func (s *Server) eventTargets(d *desk, who *caller, eq eventQuery) ([]*crypto.Card, *apiError) {
	if d.m.Handler(who.keyID) == nil {
		return nil, errUnauthorized
	}
	route, err := d.m.Route(eq.category)
	if err != nil {
		return nil, errUnknownCategory
	}
	onRoute := func(keyID string) *crypto.Card {
		i := slices.IndexFunc(route, func(c *crypto.Card) bool { return c.KeyID() == keyID })
		if i < 0 {
			return nil
		}
		return route[i]
	}
	if onRoute(who.keyID) == nil {
		return nil, errNotOnRoute
	}
	switch eq.part {
	case api.PartFacts:
		cards := d.m.CoordinatorCards()
		if len(cards) == 0 {
			return nil, errNoCoordinators
		}
		return cards, nil
	case api.PartShare:
		to := onRoute(eq.to)
		if to == nil || eq.to == who.keyID {
			return nil, errShareTarget
		}
		return []*crypto.Card{to}, nil
	}
	return route, nil
}

// postEvent stores one part of a case event, or a case's history shared
// with one handler. The signature has authenticated the caller and bounded
// the body by api.MaxEvent before it was read (auth.go); the age header
// must name exactly the stanzas of the part's recipients, in the
// manifest's order. The author's own key, when among the recipients, is
// recorded as having acknowledged it: it holds the event already.
func (s *Server) postEvent(w http.ResponseWriter, r *http.Request, who *caller) {
	eq, ok := parseEventQuery(r.URL.RawQuery)
	if !ok {
		writeError(w, errBadRequest)
		return
	}
	d := s.desk(r.PathValue("desk"))
	if d == nil {
		writeError(w, errUnknownDesk)
		return
	}
	cards, aerr := s.eventTargets(d, who, eq)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	routes, stanzas := keyIDs(cards)
	if aerr := checkAge(who.body, stanzas, int64(len(who.body))); aerr != nil {
		writeError(w, aerr)
		return
	}
	// An event waits for every live route, up to keep_unacked_days,
	// whatever the desk's after_first_ack: one colleague's ack must not
	// make it lost to a handler who is away (§10.15).
	spec := store.EventSpec{
		Desk:        d.m.Desk,
		Category:    eq.category,
		Kind:        eventKinds[eq.part],
		Routes:      routes,
		KeepUnacked: time.Duration(d.m.Retention.KeepUnackedDays) * 24 * time.Hour,
	}
	if slices.Contains(routes, who.keyID) {
		spec.Acked = []string{who.keyID}
	}
	ev, err := s.spool.PutEvent(spec, who.body)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, 201, api.EventPosted{ID: ev.ID})
}

// mayReadEvent reports whether the caller may see ev: it was routed to the
// caller's key, the caller has not acked it, and the key is still a
// handler of the desk.
func (s *Server) mayReadEvent(who *caller, ev *store.Event) bool {
	if !slices.Contains(ev.Routes, who.keyID) || slices.Contains(ev.Acks, who.keyID) {
		return false
	}
	d := s.desk(ev.Desk)
	return d != nil && d.m.Handler(who.keyID) != nil
}

// events lists one page of the events waiting for the caller, as inbox
// lists submissions. The spool reads only the caller's entries of its
// index, never the events of other handlers.
func (s *Server) events(w http.ResponseWriter, r *http.Request, who *caller) {
	after, limit, ok := parseInboxQuery(r.URL.RawQuery)
	if !ok {
		writeError(w, errBadRequest)
		return
	}
	evs, next, err := s.spool.EventsPage(who.keyID, after, limit, func(ev *store.Event) bool { return s.mayReadEvent(who, ev) })
	if err != nil {
		s.storeError(w, err)
		return
	}
	items := []api.Item{}
	for _, ev := range evs {
		items = append(items, api.Item{ID: ev.ID, Desk: ev.Desk, Category: ev.Category, Kind: wireEventKind(ev.Kind), Size: ev.Size, SHA256: ev.SHA256, Received: ev.Received.UTC().Format(time.RFC3339)})
	}
	writeJSON(w, 200, api.Inbox{Submissions: items, Next: next})
}

// wireEventKind is the wire kind of a stored event; a kind the relay does
// not know is passed on, for the client to refuse.
func wireEventKind(k string) string {
	if w, ok := wireEventKinds[k]; ok {
		return w
	}
	return k
}

// lookupEvent finds the event the path names, if it was routed to the
// caller and the caller is still a handler of its desk; anything else is
// the same not_found.
func (s *Server) lookupEvent(w http.ResponseWriter, r *http.Request, who *caller) (*store.Event, *desk) {
	ev, err := s.spool.Event(r.PathValue("id"))
	if err != nil || !slices.Contains(ev.Routes, who.keyID) {
		writeError(w, errNotFound)
		return nil, nil
	}
	d := s.desk(ev.Desk)
	if d == nil || d.m.Handler(who.keyID) == nil {
		writeError(w, errNotFound)
		return nil, nil
	}
	return ev, d
}

// downloadEvent sends an event's ciphertext whole: events are small.
func (s *Server) downloadEvent(w http.ResponseWriter, r *http.Request, who *caller) {
	ev, _ := s.lookupEvent(w, r, who)
	if ev == nil {
		return
	}
	b, err := s.spool.ReadEvent(ev.ID)
	if err != nil {
		s.storeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Amana-SHA256", ev.SHA256)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(200)
	(&progressWriter{w: w, rc: http.NewResponseController(w), idle: s.cfg.IdleTimeout}).Write(b)
}

// ackEvent records that the caller has stored an event, deleting it when
// no live route is left waiting, as ack does for a submission.
func (s *Server) ackEvent(w http.ResponseWriter, r *http.Request, who *caller) {
	ev, d := s.lookupEvent(w, r, who)
	if ev == nil {
		return
	}
	deleted, waiting, err := s.spool.AckEvent(ev.ID, who.keyID, func(route string) bool { return d.m.Handler(route) != nil })
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, 200, api.Ack{Deleted: deleted, Waiting: waiting})
}
