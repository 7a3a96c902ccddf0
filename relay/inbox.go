package relay

import (
	"net/url"
	"strconv"

	"github.com/amana-relay/amana/relay/api"
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
	if after != "" && !isSubmissionID(after) {
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

// isSubmissionID reports whether id has the form of a submission ID: 32
// lower-case hex characters.
func isSubmissionID(id string) bool {
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
