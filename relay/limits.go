package relay

import "net/http"

// lookupAllowed takes a mailbox lookup from the request's circuit's budget
// and from everyone's.
func (s *Server) lookupAllowed(r *http.Request) bool {
	return s.allowed(s.circuitLookups, &s.lookups, r)
}

// allowed applies the circuit's limit, then the global one: a circuit over
// its own takes nothing from the budget everyone shares.
func (s *Server) allowed(perCircuit *circuitLimits, global *limiter, r *http.Request) bool {
	return s.circuitAllows(perCircuit, r) && global.allow(s.cfg.Now())
}

// circuitAllows applies a per-circuit limit to a request that came with a
// circuit (CircuitListener); others pass. When a circuit is refused, an
// event says so, at most once a minute, without saying which.
func (s *Server) circuitAllows(l *circuitLimits, r *http.Request) bool {
	if l == nil {
		return true
	}
	id, ok := circuitOf(r.Context())
	if !ok || l.allow(id, s.cfg.Now()) {
		return true
	}
	now := s.cfg.Now().Unix()
	if last := s.circuitNoted.Load(); now-last >= 60 && s.circuitNoted.CompareAndSwap(last, now) {
		s.cfg.Eventf("a Tor circuit reached its per-circuit limit (429 busy for its requests)")
	}
	return false
}

// Circuits is how many Tor circuits the per-circuit limits have seen, for
// the status: 0 where tor does not tell circuits apart.
func (s *Server) Circuits() int64 {
	var n int64
	for _, l := range []*circuitLimits{s.circuitCreates, s.circuitLookups} {
		if l != nil {
			n = max(n, l.Seen())
		}
	}
	return n
}
