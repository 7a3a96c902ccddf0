// Package api holds the wire types of Amana's HTTP API (/api/v1), shared by
// the relay and its Go client so that neither restates them. It has no
// behaviour and imports nothing of the server.
package api

// Prefix is the path prefix of every API route.
const Prefix = "/api/v1"

// Kinds of inbox item (Item.Kind). An empty kind is a report bundle.
const (
	KindSelf     = "self"     // a file the submitter encrypted with age themselves
	KindReply    = "reply"    // a copy of another handler's reply in a thread
	KindFollowup = "followup" // a submitter's follow-up in a thread
)

// Kinds of case journal item (Item.Kind in the answer to GET
// /api/v1/events), and the parts a handler posts (the part query
// parameter of POST /api/v1/desks/{desk}/events): a part is posted as
// case, facts or share and listed as event, facts or share.
const (
	KindEvent = "event" // a case event, for the handlers of the case's category
	KindFacts = "facts" // its text-free twin, for the desk's coordinators
	KindShare = "share" // a case's history, for one handler of its category
)

// Parts of an event post (docs/protocol.md §10.15).
const (
	PartCase  = "case"
	PartFacts = "facts"
	PartShare = "share"
)

// MaxEvent bounds an event's ciphertext (crypto.MaxEventLen), which the
// relay reads whole.
const MaxEvent = 1 << 20

// IdempotencyHeader names a single-request submission or follow-up so a
// client that lost the answer can send it again and get the same receipt
// back instead of a second copy (docs/protocol.md, "Sending again").
const IdempotencyHeader = "Amana-Idempotency-Key"

// MaxReply bounds a desk reply and a follow-up, which the relay reads whole
// (a reply's signature covers its body).
const MaxReply = 16 << 20

// Error is the body of every error answer: {"error": {...}}. Code is stable;
// Message and Hint are for people.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	// Offset is the upload's current offset, on offset_mismatch.
	Offset *int64 `json:"offset,omitempty"`
}

// ErrorBody wraps Error on the wire.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// DeskInfo is one entry of GET /api/v1/desks.
type DeskInfo struct {
	Desk   string `json:"desk"`
	Title  string `json:"title"`
	Serial uint64 `json:"serial"`
	// Exposure is set in the answer to a publication that removes handler
	// keys (a handler removed, or given a new key).
	Exposure *Exposure `json:"exposure,omitempty"`
}

// Exposure counts what waits on the relay encrypted to handler keys a new
// manifest removed: whoever holds such a key opens it, given the
// ciphertext. Orphaned submissions were encrypted to removed keys only, so
// no handler of the new manifest can open them. Mailboxes are threads whose
// follow-ups are still encrypted to a removed key. Events are case journal
// events (of any part) encrypted to a removed key, acknowledged or not.
type Exposure struct {
	RemovedKeys int `json:"removed_keys"`
	Submissions int `json:"submissions"`
	Orphaned    int `json:"orphaned"`
	Mailboxes   int `json:"mailboxes"`
	Events      int `json:"events"`
}

// Desks is the answer to GET /api/v1/desks.
type Desks struct {
	Desks []DeskInfo `json:"desks"`
}

// CreateUpload is the body of POST /api/v1/desks/{desk}/uploads.
type CreateUpload struct {
	Category string `json:"category"`
	Length   int64  `json:"length"`
}

// UploadState answers upload creation, pieces and queries.
type UploadState struct {
	Upload   string `json:"upload,omitempty"` // the upload token, on creation only
	Offset   int64  `json:"offset"`
	Length   int64  `json:"length"`
	MaxPiece int64  `json:"max_piece"`
	// InFlight is how many pieces the relay takes at once (§10.6): 2 means
	// a piece may be sent, on another connection, while the one before it
	// is being stored; absent (0) means one at a time.
	InFlight int `json:"in_flight,omitempty"`
}

// InFlight is the relay's UploadState.InFlight: a piece and the one that
// follows it.
const InFlight = 2

// Receipt is what the relay answers when a submission is stored durably.
type Receipt struct {
	ID       string `json:"id"`
	Desk     string `json:"desk"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`   // of the ciphertext as stored
	Received string `json:"received"` // RFC 3339, coarsened
}

// Item is one entry of a handler's inbox.
type Item struct {
	ID       string `json:"id"`
	Desk     string `json:"desk"`
	Category string `json:"category,omitempty"`
	// Kind is empty for an Amana bundle, "self" for a file the submitter
	// encrypted with age themselves.
	Kind string `json:"kind,omitempty"`
	// Mailbox is the thread a reply copy or a follow-up belongs to.
	Mailbox  string `json:"mailbox,omitempty"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	Received string `json:"received"`
}

// InboxPageMax is the most items one answer to GET /api/v1/inbox holds,
// and the page size when the request names no limit.
const InboxPageMax = 1000

// Inbox is the answer to GET /api/v1/inbox[?after=ID&limit=N]: one page,
// in ID order. GET /api/v1/events answers the same, with the events routed
// to the caller as its items (of kind event, facts or share).
type Inbox struct {
	Submissions []Item `json:"submissions"`
	// Next, when set, is the ID to ask after for the next page; it is
	// omitted on the last page.
	Next string `json:"next,omitempty"`
}

// Ack is the answer to POST /api/v1/submissions/{id}/ack.
type Ack struct {
	Deleted bool `json:"deleted"`
	// Waiting lists the key IDs of the other handlers routed to who may
	// still pull the submission and have not acknowledged it, in route
	// order; omitted when none. It is the relay's word: advisory.
	Waiting []string `json:"waiting,omitempty"`
}

// MailboxRequest is the body of the submitter's mailbox requests: the
// lookup token derived from their receipt, base64url. It travels in a body,
// never in a URL.
type MailboxRequest struct {
	Token string `json:"token"`
}

// Mailbox is the answer to POST /api/v1/mailbox. An unknown, expired or
// empty mailbox all give an empty list.
type Mailbox struct {
	// Desk and Category are the thread's, once the mailbox exists: a
	// follow-up goes to that category's handlers.
	Desk     string      `json:"desk,omitempty"`
	Category string      `json:"category,omitempty"`
	Replies  []ReplyInfo `json:"replies"`
	KeepDays int         `json:"keep_days"` // a mailbox lives this long after its last activity
}

// ReplyInfo is one reply in a mailbox.
type ReplyInfo struct {
	ID       string `json:"id"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	Received string `json:"received"`
}

// ReplyPosted answers a handler's reply.
type ReplyPosted struct {
	ID string `json:"id"`
}

// EventPosted answers a handler's event post.
type EventPosted struct {
	ID string `json:"id"`
}

// Health is the answer to GET /api/v1/health.
type Health struct {
	Status string `json:"status"`
}

// ValidID reports whether id has the form of a submission ID: 32
// lower-case hex characters, which sort as the relay's keys do.
func ValidID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// MaxAckBatch is the most submission IDs one POST /api/v1/acks
// acknowledges, and MaxAckBody bounds its body: {"ids":[…]} with that many
// IDs fits in it with room to spare.
const (
	MaxAckBatch = 1000
	MaxAckBody  = 64 << 10
)

// AckBatch is the body of POST /api/v1/acks: the IDs of the submissions
// the caller holds, each once, 1 to MaxAckBatch of them.
type AckBatch struct {
	IDs []string `json:"ids"`
}

// AckBatchResult is its answer: one AckItem per ID asked, in the order
// asked, all committed in one durable transaction.
type AckBatchResult struct {
	Acks []AckItem `json:"acks"`
}

// AckItem is what the relay did with one ID of an AckBatch: Deleted and
// Waiting as in Ack, or Error "not_found" (nothing recorded for it) for a
// submission that does not exist, or that the caller may not acknowledge.
type AckItem struct {
	ID      string   `json:"id"`
	Deleted bool     `json:"deleted"`
	Waiting []string `json:"waiting,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Bulk download (POST /api/v1/bulk): many small submissions in one signed
// request. Its body is an AckBatch naming them; its answer is BulkMagic,
// then for each ID asked, in order, a header line "ID SIZE\n" and SIZE
// bytes of ciphertext, or "ID -\n" for one not served (deleted, or not the
// caller's), then "end\n".
const (
	BulkMagic    = "amana-bulk-v1\n"
	BulkMaxItems = 1000    // IDs one request may name
	BulkMaxItem  = 1 << 20 // the largest submission a bulk answer carries
	BulkMaxBytes = 64 << 20
)
