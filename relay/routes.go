package relay

import (
	"net/http"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// intakeRoutes is the public side of the API and the submitter pages,
// each route with what it may cost (admission.go).
func (s *Server) intakeRoutes() []route {
	none := cost{}
	small := func(n int64, l limitKind) cost { return cost{limit: l, maxBody: fixed(n)} }
	ciphertext := func(l limitKind, max func(*Server) int64, held func(*Server, int64) int64, tooLarge *apiError) cost {
		return cost{limit: l, maxBody: max, slot: bodySlot, held: held, tooLarge: tooLarge}
	}
	page := func(l limitKind, max func(*Server) int64, held func(*Server, int64) int64, a refusalStyle) cost {
		return cost{limit: l, maxBody: max, slot: formSlot, held: held, answer: a}
	}
	keepText := func(c cost) cost { c.keepText = true; return c }
	return []route{
		{"GET /api/v1/health", none, s.health},
		{"GET /api/v1/desks", none, s.listDesks},
		{"GET /api/v1/desks/{desk}/manifest", none, s.manifest},
		{"POST /api/v1/desks/{desk}/submissions", ciphertext(limitCreate, (*Server).maxSingle, heldWhole, errUseUpload), s.submit},
		{"POST /api/v1/desks/{desk}/uploads", small(maxSmallBody, limitCreate), s.createUpload},
		{"GET /api/v1/uploads/{token}", none, s.uploadState},
		{"PATCH /api/v1/uploads/{token}", ciphertext(noLimit, (*Server).maxPiece, heldStreamed, errPieceTooLarge), s.writeUpload},
		{"POST /api/v1/uploads/{token}/complete", none, s.completeUpload},
		{"POST /api/v1/mailbox", small(1024, limitLookup), s.checkMailbox},
		{"POST /api/v1/mailbox/replies/{reply}", small(1024, limitLookup), s.downloadReply},
		{"POST /api/v1/mailbox/followups", ciphertext(limitLookup|limitCreate, fixed(MaxReply), heldWhole, nil), s.postFollowup},
		{"GET /check", none, s.checkPage},
		{"POST /check", page(limitLookup, fixed(maxCheckPost), heldCheck, refuseCheckPage), s.checkForm},
		{"POST /check/file", page(limitLookup, fixed(maxCheckPost), heldCheck, refuseCheckPage), s.checkFile},
		{"POST /check/followup", keepText(page(limitLookup|limitCreate, (*Server).maxFollowupPost, heldForm, refuseCheckPage)), s.followupForm},
		{"GET /{$}", none, s.index},
		{"GET /desks/{desk}", none, s.deskPage},
		{"POST /desks/{desk}/submit", keepText(page(limitCreate, (*Server).maxFormPost, heldForm, refuseDeskPage)), s.submitForm},
		{"GET /desks/{desk}/self", none, s.selfPage},
		{"POST /desks/{desk}/self", page(limitCreate, (*Server).maxFormPost, heldForm, refuseDeskPage), s.submitSelf},
		{"GET /desks/{desk}/recipients.txt", none, s.recipients},
		{"GET /static/", none, s.static().ServeHTTP},
		{"/", none, s.intakeNotFound},
	}
}

// handlerRoutes is the handler side of the API: inbox, download, ack,
// replies, the case journal's events and manifest publication, every route but health and the
// manifest requiring a signed request.
func (s *Server) handlerRoutes() []route {
	none := cost{}
	return []route{
		{"GET /api/v1/health", none, s.health},
		s.signedRoute("GET /api/v1/inbox", asHandler, 0, s.inbox),
		s.signedRoute("GET /api/v1/submissions/{id}", asHandler, 0, s.download),
		s.signedRoute("POST /api/v1/submissions/{id}/ack", asHandler, 0, s.ack),
		s.signedRoute("POST /api/v1/acks", asHandler, api.MaxAckBody, s.ackBatch),
		s.signedRoute("POST /api/v1/bulk", asHandler, api.MaxAckBody, s.bulk),
		s.signedRoute("PUT /api/v1/admin/desks/{desk}", asAdmin, crypto.MaxManifestLen, s.publish),
		{"GET /api/v1/desks/{desk}/manifest", none, s.manifest},
		s.signedRoute("POST /api/v1/mailboxes/{mailbox}/replies", asHandler, MaxReply, s.postReply),
		s.signedRoute("POST /api/v1/desks/{desk}/events", asHandler, api.MaxEvent, s.postEvent, limitEventKey),
		s.signedRoute("GET /api/v1/events", asHandler, 0, s.events),
		s.signedRoute("GET /api/v1/events/{id}", asHandler, 0, s.downloadEvent),
		s.signedRoute("POST /api/v1/events/{id}/ack", asHandler, 0, s.ackEvent),
		{"/", none, notFound},
	}
}

// signedRoute is a route whose requests are signed (auth.go), with a body
// of at most limit bytes (0: none), which is read only once the signature
// over the headers verifies, and the per-key rate limits it draws from
// (limitEventKey), checked then too.
func (s *Server) signedRoute(pattern string, as role, limit int64, h func(http.ResponseWriter, *http.Request, *caller), perKey ...limitKind) route {
	c := cost{}
	if limit > 0 {
		c.maxBody = fixed(limit)
	}
	for _, l := range perKey {
		c.limit |= l
	}
	return route{pattern, c, s.signed(as, limit, c.limit, h)}
}

func (s *Server) mux(routes []route) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, s.admit(rt.cost, rt.h))
	}
	return s.wrap(mux)
}

// Intake returns the public side of the API: manifests, submissions,
// uploads, mailboxes, the submitter pages and health. It is safe to expose
// to anyone.
func (s *Server) Intake() http.Handler { return s.mux(s.intakeRoutes()) }

// Handlers returns the handler side of the API: inbox, download, ack,
// replies, events and manifest publication, every route requiring a signed request.
func (s *Server) Handlers() http.Handler { return s.mux(s.handlerRoutes()) }

// Route limits that depend on the configuration.
func (s *Server) maxSingle() int64 { return s.cfg.MaxSingle }

func (s *Server) maxPiece() int64 { return s.cfg.MaxPiece }

// maxFormPost bounds a desk page's post: the files and the text fields
// with their multipart framing.
func (s *Server) maxFormPost() int64 {
	return min(s.cfg.MaxFormBytes, s.cfg.MaxSubmission) + maxAnswerBytes + formFraming
}

// maxFollowupPost bounds the no-JavaScript follow-up's post.
func (s *Server) maxFollowupPost() int64 {
	return min(s.cfg.MaxFormBytes, MaxReply) + maxAnswerBytes + formFraming
}

const (
	// formFraming is what multipart boundaries and part headers may add.
	formFraming = 64 << 10
	// maxCheckPost bounds the no-JavaScript check's post: the receipt.
	maxCheckPost = 64 << 10
)

// Combined serves both sides on one listener, for loopback use.
func (s *Server) Combined() http.Handler {
	in, hd := s.Intake(), s.Handlers()
	mux := http.NewServeMux()
	for _, p := range []string{"/api/v1/inbox", "/api/v1/submissions/", "/api/v1/acks", "/api/v1/bulk", "/api/v1/admin/", "/api/v1/mailboxes/",
		"/api/v1/events", "/api/v1/events/", "POST /api/v1/desks/{desk}/events"} {
		mux.Handle(p, hd)
	}
	mux.Handle("/", in)
	return mux
}
