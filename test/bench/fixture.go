package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/store"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

// deskID is the desk every benchmark submits to.
const deskID = "bench"

// newDesk makes the benchmark's desk: an admin and n handlers, every
// submission routed to all of them.
func newDesk(n int, classic bool, maxSubmission int64) (*relayproc.Desk, error) {
	return relayproc.NewDesk(deskID, "Benchmark desk", n, classic, maxSubmission)
}

// localRelay is a relay over a durable spool, served on loopback by this
// process.
type localRelay struct {
	spool *store.Spool
	http  *http.Server
	url   string
}

// startLocalRelay opens a spool in dir with the default, durable options and
// serves a relay over it on 127.0.0.1.
func startLocalRelay(dir string, admin ed25519.PublicKey) (*localRelay, error) {
	sp, err := store.Open(dir, nil)
	if err != nil {
		return nil, fmt.Errorf("opening spool: %w", err)
	}
	// The benchmark measures throughput, not the rate limit that guards it.
	srv, err := relay.New(sp, relay.Config{Admin: admin, CreateRate: 1 << 20, CreateBurst: 1 << 20, MaxConcurrentBodies: 1024})
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("starting relay: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	hs := srv.HTTPServer(srv.Combined())
	go hs.Serve(ln)
	return &localRelay{spool: sp, http: hs, url: "http://" + ln.Addr().String()}, nil
}

func (r *localRelay) Close() error {
	r.http.Close()
	return r.spool.Close()
}

// newClients returns n clients of the relay at url, each with its own
// connection, each already connected.
func newClients(ctx context.Context, url string, n int) ([]*client.Client, error) {
	cs := make([]*client.Client, n)
	for i := range cs {
		c, err := client.New(url, nil)
		if err != nil {
			return nil, err
		}
		if err := c.Health(ctx); err != nil {
			return nil, fmt.Errorf("checking the relay answers: %w", err)
		}
		cs[i] = c
	}
	return cs, nil
}

// submitAll sends bodies to the desk from every client at once, each client
// taking the next body when its last one is stored, and checks every
// receipt.
func submitAll(ctx context.Context, clients []*client.Client, bodies [][]byte) error {
	return parallel(ctx, len(clients), len(bodies), func(ctx context.Context, worker, i int) error {
		rc, err := clients[worker].Submit(ctx, deskID, "", bytes.NewReader(bodies[i]), int64(len(bodies[i])), nil)
		if err != nil {
			return fmt.Errorf("submission %d: %w", i, err)
		}
		return checkReceipt(rc, int64(len(bodies[i])), sha256.Sum256(bodies[i]))
	})
}

// checkReceipt checks the relay stored exactly the bytes sent.
func checkReceipt(rc *api.Receipt, size int64, sum [32]byte) error {
	if rc.Size != size || rc.SHA256 != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("receipt %s does not match what was sent (%d bytes, SHA-256 %s)", rc.ID, rc.Size, rc.SHA256)
	}
	return nil
}

// parallel calls fn for every i in [0, n) from workers goroutines, each
// taking the next i when its call returns. After the first error no new call
// starts, and that error is returned.
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, worker, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, w, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// stream returns n bytes of a deterministic ChaCha8 keystream: fast, and
// never held in memory whole.
func stream(seed byte, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{seed}), n)
}

// streamSHA256 is the hex SHA-256 of stream(seed, n).
func streamSHA256(seed byte, n int64) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, stream(seed, n)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
