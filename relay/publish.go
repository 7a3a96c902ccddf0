package relay

import (
	"errors"
	"net/http"
	"slices"
	"sort"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/store"
)

func (s *Server) listDesks(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	out := []api.DeskInfo{}
	for _, d := range s.desks {
		out = append(out, api.DeskInfo{Desk: d.m.Desk, Title: d.m.Title, Serial: d.m.Serial})
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Desk < out[j].Desk })
	writeJSON(w, 200, api.Desks{Desks: out})
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request) {
	d := s.desk(r.PathValue("desk"))
	if d == nil {
		writeError(w, errUnknownDesk)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(d.raw)
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request, who *caller) {
	m, _, err := crypto.OpenManifest(who.body, s.cfg.Admin)
	if err != nil || m.Desk != r.PathValue("desk") {
		writeError(w, errBadManifest)
		return
	}
	s.mu.Lock()
	var old *crypto.Manifest
	if d := s.desks[m.Desk]; d != nil {
		old = d.m
	}
	if err := s.spool.PutDesk(m.Desk, m.Serial, who.body); err != nil {
		s.mu.Unlock()
		if errors.Is(err, store.ErrStaleSerial) {
			writeError(w, errStaleSerial)
			return
		}
		s.storeError(w, err)
		return
	}
	s.desks[m.Desk] = &desk{m: m, raw: who.body}
	s.mu.Unlock()
	s.cfg.Eventf("desk %q manifest serial %d published", m.Desk, m.Serial)
	info := api.DeskInfo{Desk: m.Desk, Title: m.Title, Serial: m.Serial}
	if ex := s.exposure(old, m); ex != nil {
		info.Exposure = ex
		s.cfg.Eventf("desk %q: %d handler key(s) removed; %d waiting submission(s) encrypted to them (%d to nobody else), %d mailbox(es), %d event(s)",
			m.Desk, ex.RemovedKeys, ex.Submissions, ex.Orphaned, ex.Mailboxes, ex.Events)
	}
	writeJSON(w, 200, info)
	if s.cfg.OnPublish != nil {
		s.cfg.OnPublish()
	}
}

// exposure counts what waits encrypted to the handler keys that old has and
// m has not; nil when m removes none.
func (s *Server) exposure(old, m *crypto.Manifest) *api.Exposure {
	if old == nil {
		return nil
	}
	removed := map[string]bool{}
	for _, c := range old.Cards() {
		if m.Handler(c.KeyID()) == nil {
			removed[c.KeyID()] = true
		}
	}
	if len(removed) == 0 {
		return nil
	}
	ex := &api.Exposure{RemovedKeys: len(removed)}
	subs, _ := s.spool.Submissions(func(sub *store.Submission) bool { return sub.Desk == m.Desk })
	for _, sub := range subs {
		hit, kept := false, false
		for _, r := range sub.Routes {
			if removed[r] {
				hit = true
			} else if m.Handler(r) != nil {
				kept = true
			}
		}
		if hit {
			ex.Submissions++
			if !kept {
				ex.Orphaned++
			}
		}
	}
	mbs, _ := s.spool.Mailboxes(func(mb *store.Mailbox) bool {
		return mb.Desk == m.Desk && slices.ContainsFunc(mb.Routes, func(r string) bool { return removed[r] })
	})
	ex.Mailboxes = len(mbs)
	ex.Events, _ = s.spool.CountEvents(func(ev *store.Event) bool {
		return ev.Desk == m.Desk && slices.ContainsFunc(ev.Routes, func(r string) bool { return removed[r] })
	})
	return ex
}
