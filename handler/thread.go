package handler

import (
	"fmt"
	"io"
	"os"
	"sort"

	"filippo.io/age"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
)

// ThreadItem is a follow-up or a reply (a copy, or one's own) of a thread,
// with its report.json when it opens. Report is nil and Err says why when
// it does not. With Report set, Err says the item is damaged: ThreadSums
// could not read an attachment to its end.
type ThreadItem struct {
	Meta   *cases.Meta
	Report *crypto.Report
	Err    error
}

// Seq is the item's place in the thread as its writer gave it inside the
// ciphertext; 0 when it cannot be opened or was written before seq existed.
func (it *ThreadItem) Seq() int64 {
	if it.Report == nil {
		return 0
	}
	return it.Report.Seq
}

// InThread reports whether a case's metadata makes it a follow-up or a
// reply filed under a mailbox.
func InThread(m *cases.Meta) bool {
	return m.Mailbox != "" && (m.Kind == api.KindReply || m.Kind == api.KindFollowup)
}

// IsReport reports whether a case is a report (an Amana bundle that is not
// a follow-up or a reply).
func IsReport(m *cases.Meta) bool { return m.Kind == "" }

// ThreadOf returns the report case of mailbox in all (the oldest, if a
// relay filed two under it), or nil when the store holds none.
func ThreadOf(all []*cases.Meta, mailbox string) *cases.Meta {
	if mailbox == "" {
		return nil
	}
	for _, m := range all {
		if IsReport(m) && m.Mailbox == mailbox {
			return m
		}
	}
	return nil
}

// Thread opens the follow-ups and replies the store files under mailbox
// (their report.json only) and returns them in thread order (SortThread).
func Thread(st *cases.Store, mailbox string, id age.Identity) ([]ThreadItem, error) {
	return thread(st, mailbox, id, false)
}

// ThreadSums is Thread, but reads through every attachment that its
// report.json lists without a SHA-256 (a follow-up sealed in one read by
// the submitter's amana, protocol §8.7.1), so that each has the SHA-256 the
// reader computes, as custody records name it. One that cannot be read to
// its end (a damaged item) is left without a SHA-256; the item's Report is
// still set, and its Err says what failed.
func ThreadSums(st *cases.Store, mailbox string, id age.Identity) ([]ThreadItem, error) {
	return thread(st, mailbox, id, true)
}

func thread(st *cases.Store, mailbox string, id age.Identity, sums bool) ([]ThreadItem, error) {
	all, err := st.List()
	if err != nil {
		return nil, err
	}
	var items []ThreadItem
	for _, m := range all {
		if !InThread(m) || m.Mailbox != mailbox {
			continue
		}
		it := ThreadItem{Meta: m}
		f, err := os.Open(st.BundlePath(m.ID))
		if err != nil {
			return nil, fmt.Errorf("opening case %s: %w", m.ID, err)
		}
		if br, err := crypto.OpenBundle(f, id); err != nil {
			it.Err = err
		} else {
			it.Report = br.Report()
			if sums && unhashed(it.Report) {
				if err := readThrough(br); err != nil {
					it.Err = fmt.Errorf("case %s is damaged: %w", m.ID, err)
				}
			}
		}
		f.Close()
		items = append(items, it)
	}
	SortThread(items)
	return items, nil
}

// unhashed reports whether r lists an attachment without a SHA-256.
func unhashed(r *crypto.Report) bool {
	for _, a := range r.Attachments {
		if a.SHA256 == "" {
			return true
		}
	}
	return false
}

// readThrough reads every attachment of br to its end, stopping at the
// first that fails, and says why.
func readThrough(br *crypto.BundleReader) error {
	for {
		a, rd, err := br.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, rd); err != nil {
			return fmt.Errorf("attachment %q: %w", a.Name, err)
		}
	}
}

// SortThread puts a thread's items in the order they were written: by the
// seq their writers put inside the ciphertext (crypto.ThreadSeq), so that
// an item comes after everything its writer had read, whatever the clocks
// and the relay say; items of equal seq, written without having read each
// other, by the hour their writers give, then by the hour the relay
// received them, then by ID. Items without a seq (written before it
// existed, or that do not open) count as 0, which leaves a thread of such
// items in the order of their hours as before.
func SortThread(items []ThreadItem) {
	sort.SliceStable(items, func(i, j int) bool {
		a, b := &items[i], &items[j]
		if a.Seq() != b.Seq() {
			return a.Seq() < b.Seq()
		}
		if sa, sb := a.submitted(), b.submitted(); sa != sb {
			return sa < sb
		}
		if a.Meta.Received != b.Meta.Received {
			return a.Meta.Received < b.Meta.Received
		}
		return a.Meta.ID < b.Meta.ID
	})
}

// submitted is the writer's hour, or the relay's when the item does not
// open.
func (it *ThreadItem) submitted() string {
	if it.Report == nil {
		return it.Meta.Received
	}
	return it.Report.Submitted
}

// NextSeq is the seq of an item the handler writes now in mailbox's
// thread: after every item of it their store holds and opens.
func NextSeq(st *cases.Store, mailbox string, id age.Identity) (int64, error) {
	items, err := Thread(st, mailbox, id)
	if err != nil {
		return 0, err
	}
	seen := make([]int64, len(items))
	for i := range items {
		seen[i] = items[i].Seq()
	}
	return crypto.ThreadSeq(seen...), nil
}
