package cli

import (
	"github.com/amana-relay/amana/crypto"
)

// seq is the place in the thread of a follow-up written now: after every
// reply read that is the desk's word in this conversation.
func (t *thread) seq() int64 {
	var seen []int64
	for i := range t.replies {
		if t.replies[i].verified() {
			seen = append(seen, t.replies[i].report.Seq)
		}
	}
	return crypto.ThreadSeq(seen...)
}
