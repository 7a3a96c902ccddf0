package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"path/filepath"
	"time"

	"github.com/amana-relay/amana/store"
	"github.com/amana-relay/amana/test/internal/relayproc"

	"filippo.io/age"
	bolt "go.etcd.io/bbolt"

	"github.com/amana-relay/amana/crypto"
)

// smallSize is the size of every small submission's ciphertext.
const smallSize = 4 << 10

// smallAim is the ratio the relay should reach against bbolt's batch.
const smallAim = 0.7

type smallResult struct {
	Submissions    int     `json:"submissions"`
	Bytes          int     `json:"bytes_each"`
	Clients        int     `json:"clients"`
	RelayPerSec    float64 `json:"relay_per_sec"`
	BaselinePerSec float64 `json:"bbolt_batch_per_sec"`
	Ratio          float64 `json:"ratio"`
	Aim            float64 `json:"aim_ratio"`
}

func (r *smallResult) print(out io.Writer) {
	printLine(out, fmt.Sprintf("small submissions (%d x %d KiB, %d clients)", r.Submissions, r.Bytes>>10, r.Clients),
		fmt.Sprintf("relay %.0f/s  bbolt batch %.0f/s  ratio %.2fx (aim >= %.1fx)", r.RelayPerSec, r.BaselinePerSec, r.Ratio, r.Aim))
}

// benchSmall times small submissions through HTTP, the relay and the spool,
// against bbolt's own batched puts of the same bytes.
func benchSmall(ctx context.Context, cfg *config, dir string) (*smallResult, error) {
	d, err := newDesk(1, cfg.classic, 0)
	if err != nil {
		return nil, err
	}
	bodies, err := sealSmall(d.Cards(), cfg.submissions, smallSize)
	if err != nil {
		return nil, err
	}
	base, err := bboltBatch(ctx, filepath.Join(dir, "baseline.db"), cfg.clients, bodies)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	took, err := relaySmall(ctx, filepath.Join(dir, "relay"), d, cfg.clients, bodies)
	if err != nil {
		return nil, err
	}
	n := float64(len(bodies))
	r := &smallResult{
		Submissions: len(bodies), Bytes: smallSize, Clients: cfg.clients,
		RelayPerSec: n / took.Seconds(), BaselinePerSec: n / base.Seconds(), Aim: smallAim,
	}
	r.Ratio = ratio(r.RelayPerSec, r.BaselinePerSec)
	return r, nil
}

// sealSmall encrypts n random plaintexts with age to cards, each sized so
// that its age file is exactly size bytes. This is the submitter's work, done
// before any clock starts.
func sealSmall(cards []*crypto.Card, n, size int) ([][]byte, error) {
	recips, err := crypto.Recipients(cards)
	if err != nil {
		return nil, err
	}
	empty, err := seal(recips, nil)
	if err != nil {
		return nil, err
	}
	// Up to 64 KiB of plaintext is one STREAM chunk, so the overhead is fixed.
	plainLen := size - len(empty)
	if plainLen < 0 || plainLen > 64<<10 {
		return nil, fmt.Errorf("cannot make %d-byte age files: the overhead alone is %d bytes", size, len(empty))
	}
	rng := mrand.NewChaCha8([32]byte{1})
	plain := make([]byte, plainLen)
	out := make([][]byte, n)
	for i := range out {
		rng.Read(plain)
		if out[i], err = seal(recips, plain); err != nil {
			return nil, err
		}
		if len(out[i]) != size {
			return nil, fmt.Errorf("age file is %d bytes, expected %d", len(out[i]), size)
		}
	}
	return out, nil
}

func seal(recips []age.Recipient, plain []byte) ([]byte, error) {
	var b bytes.Buffer
	w, err := age.Encrypt(&b, recips...)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	return b.Bytes(), nil
}

// bboltBatch times putting bodies into a fresh bbolt file at path with
// db.Batch from workers goroutines, durably, with the options and batch
// delay store.Open uses: the floor under what the spool can do.
func bboltBatch(ctx context.Context, path string, workers int, bodies [][]byte) (time.Duration, error) {
	db, err := bolt.Open(path, 0o600, store.BoltOptions(nil))
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer db.Close()
	db.MaxBatchDelay = batchDelay
	bucket := []byte("submissions")
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(bucket)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("creating bucket: %w", err)
	}
	keys := make([][]byte, len(bodies))
	for i := range keys {
		keys[i] = make([]byte, 16)
		rand.Read(keys[i])
	}
	start := time.Now()
	err = parallel(ctx, workers, len(bodies), func(_ context.Context, _, i int) error {
		return db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(keys[i], bodies[i]) })
	})
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("batch put: %w", err)
	}
	return took, nil
}

// relaySmall times submitting bodies from clients concurrent clients to a
// relay in this process over a durable spool in dir.
func relaySmall(ctx context.Context, dir string, d *relayproc.Desk, clients int, bodies [][]byte) (time.Duration, error) {
	lr, err := startLocalRelay(dir, d.AdminKey())
	if err != nil {
		return 0, err
	}
	defer lr.Close()
	if err := d.Publish(ctx, lr.url); err != nil {
		return 0, err
	}
	cs, err := newClients(ctx, lr.url, clients)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := submitAll(ctx, cs, bodies); err != nil {
		return 0, err
	}
	took := time.Since(start)
	st, err := lr.spool.Stats()
	if err != nil {
		return 0, fmt.Errorf("reading spool stats: %w", err)
	}
	if st.Submissions != len(bodies) {
		return 0, fmt.Errorf("spool holds %d submissions after %d were sent", st.Submissions, len(bodies))
	}
	return took, nil
}

// batchDelay is the spool's default batch delay (store.Options.BatchDelay).
var batchDelay = store.Options{}.BatchDelayOrDefault()
