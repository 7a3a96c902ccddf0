package handler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"filippo.io/age"
	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

// PullWorkers is how many downloads and acks Pull runs at once.
const PullWorkers = 4

// Problem is one case Pull could not fully handle, or (ID empty) a fault
// of the relay's that cost no case (ErrBulkMalformed).
type Problem struct {
	ID  string
	Err error
}

// PullResult says what Pull did.
type PullResult struct {
	Pulled   []string  // cases downloaded now
	Acked    int       // cases acknowledged (new ones and older ones whose ack had failed)
	Problems []Problem // the others
	Bytes    int64     // bytes to download at the start, for progress
	// Duplicates are submissions whose bytes a case already held has (the
	// same report stored on another relay): acknowledged, not downloaded.
	Duplicates int
	// Waiting lists, for each case acknowledged now that the relay keeps,
	// the key IDs of the other handlers it says have yet to fetch it. It
	// is the relay's word, advisory only.
	Waiting []Waiting
}

// Waiting is one acknowledged case and the other handlers' keys the relay
// says it still waits for.
type Waiting struct {
	ID   string
	Desk string
	Keys []string
}

// Pull downloads every submission waiting for the handler whose key c holds
// into st, several at once, each verified against the relay's size and
// SHA-256 and synced; then it syncs the store and only then acknowledges
// every case stored there, so the relay never deletes a submission the
// handler does not durably have. relay is recorded in each case. With the
// handler's identity, each new report's mailbox is read from its own
// encrypted report.json before its metadata is written, so that its replies
// and follow-ups join it; the metadata is written once. The file key that
// decryption unwraps is kept in the metadata sealed under a key derived
// from the identity (crypto.FileKeyCache), so that Open does not repeat
// the public-key decryption.
// progress, if not nil, is called first with the total to download and then
// with the bytes done so far.
func Pull(ctx context.Context, c *client.Client, st *cases.Store, id age.Identity, relay string, progress func(total, done int64)) (*PullResult, error) {
	all, err := c.Inbox(ctx)
	if err != nil {
		return nil, err
	}
	res := &PullResult{}
	// The same ciphertext can wait on two relays behind one onion address
	// (Onionbalance), when a client sent it again after losing the answer
	// and the second try reached the other relay. A case already held with
	// the same SHA-256 is not downloaded again, only acknowledged.
	// The store's local index gives every held case's SHA-256 without
	// reading each case's metadata, and which cases a Sync made durable.
	held := map[string][]string{} // SHA-256 to the IDs of the cases held with it
	idx, err := st.Index()
	if err != nil {
		return nil, err
	}
	for id, e := range idx {
		held[e.SHA256] = append(held[e.SHA256], id)
	}
	var items, fresh, dupes []api.Item
	for _, it := range all {
		if !cases.ValidID(it.ID) || it.Size < 0 {
			res.Problems = append(res.Problems, Problem{it.ID, errors.New("the relay listed an invalid case; it was skipped")})
			continue
		}
		switch {
		case st.Has(it.ID):
			// Held, and still listed: its acknowledgement failed, or a power
			// cut came before the store's sync. Unless the index says a
			// Sync made it durable with this SHA-256, it is checked whole
			// before it is acknowledged again; a case left short is
			// fetched again.
			ok := true
			var err error
			if e, in := idx[it.ID]; !in || !e.Synced || e.SHA256 != it.SHA256 {
				ok, err = st.Verify(it.ID, it.Size, it.SHA256)
			}
			if err != nil {
				res.Problems = append(res.Problems, Problem{it.ID, err})
				continue
			}
			items = append(items, it)
			if !ok {
				fresh = append(fresh, it)
				res.Bytes += it.Size - st.Partial(it.ID)
			}
		case it.SHA256 != "" && heldTwin(st, idx, held[it.SHA256], it):
			dupes = append(dupes, it)
		default:
			items = append(items, it)
			fresh = append(fresh, it)
			res.Bytes += it.Size - st.Partial(it.ID)
		}
	}
	res.Duplicates = len(dupes)
	if progress == nil {
		progress = func(int64, int64) {}
	}
	progress(res.Bytes, 0)
	var done atomic.Int64
	count := func(w io.Writer) io.Writer {
		return &countingWriter{w: w, done: &done, report: func(n int64) { progress(res.Bytes, n) }}
	}
	// Small new cases come many to a request; what a bulk answer did not
	// bring whole (or a relay without the route) is fetched alone below.
	var bulkDone []string
	var bulkErr error
	fresh, bulkDone, bulkErr = pullBulk(ctx, c, st, fresh, relay, id, count)
	res.Pulled = append(res.Pulled, bulkDone...)
	if bulkErr != nil {
		res.Problems = append(res.Problems, Problem{Err: bulkErr})
	}
	errs := parallel(fresh, func(_ int, it api.Item) error {
		m := cases.Meta{ID: it.ID, Relay: relay, Desk: it.Desk, Category: it.Category, Kind: it.Kind, Mailbox: it.Mailbox, Size: it.Size, SHA256: it.SHA256, Received: it.Received}
		return st.Receive(m, func(off int64, w io.Writer) error {
			_, err := c.Download(ctx, it.ID, off, count(w))
			return err
		}, learnMailbox(id))
	})
	for i, err := range errs {
		if err != nil {
			res.Problems = append(res.Problems, Problem{fresh[i].ID, err})
		} else {
			res.Pulled = append(res.Pulled, fresh[i].ID)
		}
	}
	// One sync for every case received: nothing is acknowledged before it.
	if err := st.Sync(); err != nil {
		return res, fmt.Errorf("syncing the case store: %w", err)
	}
	stored := dupes
	for _, it := range items {
		if st.Has(it.ID) {
			stored = append(stored, it)
		}
	}
	acks, errs := ackAll(ctx, c, stored)
	for i, err := range errs {
		if err != nil {
			res.Problems = append(res.Problems, Problem{stored[i].ID,
				fmt.Errorf("stored here, but the acknowledgement failed (it is sent again on the next pull): %w", err)})
			continue
		}
		res.Acked++
		if a := acks[i]; !a.Deleted && len(a.Waiting) > 0 {
			res.Waiting = append(res.Waiting, Waiting{ID: stored[i].ID, Desk: stored[i].Desk, Keys: a.Waiting})
		}
	}
	return res, nil
}

// heldTwin reports whether the store durably holds, under another ID, a
// case with its bytes, so that it may be acknowledged without a download.
// A twin counts at once only if the index says a Sync made it durable; one
// known only from a rebuilt index ("-": a power cut may have torn it) is
// first verified whole against its size and SHA-256, and then the
// pull's Sync makes it durable before anything is acknowledged. A twin
// that fails is removed by Verify; with none left, it is downloaded.
func heldTwin(st *cases.Store, idx map[string]cases.IndexEntry, twins []string, it api.Item) bool {
	for _, id := range twins {
		if idx[id].Synced && st.Has(id) {
			return true
		}
	}
	for _, id := range twins {
		if !st.Has(id) {
			continue
		}
		if ok, err := st.Verify(id, it.Size, it.SHA256); err == nil && ok {
			return true
		}
	}
	return false
}

// pullBulk receives the small items of fresh (api.BulkMaxItem bytes at
// most, no partial download left) through bulk downloads of up to
// api.BulkMaxItems and api.BulkMaxBytes each, and returns the items still
// to fetch one by one (the others, and those a bulk answer did not bring
// whole) and the IDs received. A malformed answer (client.ErrBulkAnswer:
// another case, another size, a bad ending) changes nothing of that, its
// cases are fetched alone, but it is returned as malformed (once for the
// pull), so that a misbehaving relay shows.
func pullBulk(ctx context.Context, c *client.Client, st *cases.Store, fresh []api.Item, relay string, id age.Identity, count func(io.Writer) io.Writer) (rest []api.Item, got []string, malformed error) {
	var small []api.Item
	for _, it := range fresh {
		if it.Size <= api.BulkMaxItem && st.Partial(it.ID) == 0 {
			small = append(small, it)
		} else {
			rest = append(rest, it)
		}
	}
	for len(small) > 0 {
		n, bytes := 0, int64(0)
		for n < len(small) && n < api.BulkMaxItems && bytes+small[n].Size <= api.BulkMaxBytes {
			bytes += small[n].Size
			n++
		}
		batch := small[:n]
		small = small[n:]
		ids := make([]string, n)
		sizes := make([]int64, n)
		for i, it := range batch {
			ids[i], sizes[i] = it.ID, it.Size
		}
		// Each case arrives whole in memory (at most api.BulkMaxItem), and
		// PullWorkers store it at once, verifying and decrypting its
		// beginning, while the answer goes on: at most 2×PullWorkers+1 cases
		// are held.
		type arrived struct {
			i    int
			it   api.Item
			body []byte
		}
		stored := make([]bool, n)
		work := make(chan arrived, PullWorkers)
		var wg sync.WaitGroup
		for range PullWorkers {
			wg.Go(func() {
				for g := range work {
					m := cases.Meta{ID: g.it.ID, Relay: relay, Desk: g.it.Desk, Category: g.it.Category, Kind: g.it.Kind, Mailbox: g.it.Mailbox, Size: g.it.Size, SHA256: g.it.SHA256, Received: g.it.Received}
					// Verified and decrypted from memory, never read
					// back; one that fails is fetched alone after.
					if st.ReceiveBody(m, g.body, learnMailbox(id)) == nil {
						stored[g.i] = true
						count(io.Discard).Write(g.body)
					}
				}
			})
		}
		_, err := c.Bulk(ctx, ids, sizes, func(i int, body io.Reader) error {
			b, err := io.ReadAll(io.LimitReader(body, api.BulkMaxItem))
			if err != nil || int64(len(b)) != batch[i].Size {
				return nil // cut short: fetched alone after
			}
			work <- arrived{i, batch[i], b}
			return nil
		})
		close(work)
		wg.Wait()
		for i, it := range batch {
			if stored[i] {
				got = append(got, it.ID)
			} else {
				rest = append(rest, it)
			}
		}
		if client.AckManyUnsupported(err) {
			// A relay without the route: every other case alone.
			return append(rest, small...), got, malformed
		}
		if errors.Is(err, client.ErrBulkAnswer) && malformed == nil {
			malformed = fmt.Errorf("%w (%s)", ErrBulkMalformed, strings.TrimPrefix(err.Error(), client.ErrBulkAnswer.Error()+": "))
		}
	}
	return rest, got, malformed
}

// ErrBulkMalformed is the Problem (with no case ID) of a pull whose relay
// sent a malformed bulk answer; the cases were fetched one at a time.
var ErrBulkMalformed = errors.New("the relay's bulk answer was malformed; cases fetched one at a time")

// ackAll acknowledges every item, api.MaxAckBatch at a time in one signed
// request each (POST /api/v1/acks), or one by one, PullWorkers at once,
// from a relay without that route. It returns the answers and errors by
// index.
func ackAll(ctx context.Context, c *client.Client, items []api.Item) ([]api.Ack, []error) {
	acks := make([]api.Ack, len(items))
	errs := make([]error, len(items))
	for start := 0; start < len(items); start += api.MaxAckBatch {
		batch := items[start:min(start+api.MaxAckBatch, len(items))]
		ids := make([]string, len(batch))
		for i, it := range batch {
			ids[i] = it.ID
		}
		got, err := c.AckMany(ctx, ids)
		if client.AckManyUnsupported(err) {
			rest := items[start:]
			one := parallel(rest, func(i int, it api.Item) error {
				var err error
				acks[start+i], err = c.Ack(ctx, it.ID)
				return err
			})
			copy(errs[start:], one)
			return acks, errs
		}
		for i := range batch {
			switch {
			case err != nil:
				errs[start+i] = err
			case got[i].Error != "":
				errs[start+i] = fmt.Errorf("the relay answered %s", got[i].Error)
			default:
				acks[start+i] = api.Ack{Deleted: got[i].Deleted, Waiting: got[i].Waiting}
			}
		}
	}
	return acks, errs
}

// learnMailbox reads a report's mailbox and its own category from its
// encrypted report.json, the bundle's first entry, so that only its
// beginning is decrypted, and keeps the file key that decryption unwrapped
// sealed in the metadata (m.FileKey) for Open. Reply copies and follow-ups
// carry their mailbox from the relay, and a case that does not open keeps
// none.
func learnMailbox(id age.Identity) func(io.Reader, *cases.Meta) {
	if id == nil {
		return nil
	}
	cache, _ := crypto.NewFileKeyCache(id)
	return func(ct io.Reader, m *cases.Meta) {
		if m.Kind != "" || (m.Mailbox != "" && m.ReportCategory != nil) {
			return
		}
		ci := crypto.Capture(id)
		if br, err := crypto.OpenBundle(ct, ci); err == nil {
			cat := br.Report().Category
			m.Mailbox, m.ReportCategory = br.Report().Mailbox, &cat
			if cache != nil && ci.Key() != nil {
				m.FileKey = cache.Seal(m.ID, m.SHA256, ci.Key())
			}
		}
	}
}

// parallel runs fn on every item with PullWorkers goroutines and returns
// the errors by index; fn gets each item's index.
func parallel(items []api.Item, fn func(int, api.Item) error) []error {
	errs := make([]error, len(items))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(PullWorkers, len(items)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(items); i = int(next.Add(1) - 1) {
				errs[i] = fn(i, items[i])
			}
		}()
	}
	wg.Wait()
	return errs
}

type countingWriter struct {
	w      io.Writer
	done   *atomic.Int64
	report func(int64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.report(c.done.Add(int64(n)))
	return n, err
}
