package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// token makes a new upload token and its key. The token is the capability
// the uploader holds; the spool stores only the key, SHA-256(token)[:16], so a
// lookup's timing says nothing useful about valid tokens.
func token() (string, []byte) {
	var t [16]byte
	rand.Read(t[:])
	tok := base64.RawURLEncoding.EncodeToString(t[:])
	return tok, tokenKey(tok)
}

func tokenKey(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:16]
}

// idempotencyKey is the key of the submission a client names with an
// idempotency key. The desk is part of it, so one key cannot reach another
// desk's submission, and the domain string keeps it apart from upload
// token keys.
func idempotencyKey(desk, idem string) []byte {
	h := sha256.Sum256([]byte("amana idempotency v1\x00" + desk + "\x00" + idem))
	return h[:16]
}

// SubmissionID is the public ID of the submission an upload token becomes.
func SubmissionID(tok string) string { return hex.EncodeToString(tokenKey(tok)) }

func be64(n int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(n))
	return k[:]
}

// unbe64 reads a key be64 wrote; anything else reads as -1.
func unbe64(k []byte) int64 {
	if len(k) != 8 {
		return -1
	}
	return int64(binary.BigEndian.Uint64(k))
}

// putChunks stores one commit's chunks, starting at off, in a bucket of
// their own: chunks/<key>/<off>/<chunk offset>. A B+tree appends into its
// last leaf, and bbolt rewrites a whole leaf, values included, when it
// changes; a fresh bucket per commit means no earlier chunk is ever read
// back or written again.
func putChunks(tx *bolt.Tx, key []byte, off int64, chunks [][]byte) error {
	sb, err := tx.Bucket(bChunks).CreateBucketIfNotExists(key)
	if err != nil {
		return err
	}
	bb, err := sb.CreateBucket(be64(off))
	if err != nil {
		return err
	}
	bb.FillPercent = 1
	for _, ch := range chunks {
		if err := bb.Put(be64(off), ch); err != nil {
			return err
		}
		off += int64(len(ch))
	}
	return nil
}

// floor positions c at the greatest key not above k.
func floor(c *bolt.Cursor, k []byte) ([]byte, []byte) {
	fk, fv := c.Seek(k)
	if fk == nil || !bytes.Equal(fk, k) {
		fk, fv = c.Prev()
	}
	return fk, fv
}

// chunkAt returns the stored chunk holding byte off and that chunk's start.
func chunkAt(tx *bolt.Tx, key []byte, off int64) ([]byte, int64, error) {
	sb := tx.Bucket(bChunks).Bucket(key)
	if sb == nil {
		return nil, 0, ErrNotFound
	}
	bk, _ := floor(sb.Cursor(), be64(off))
	if bk == nil {
		return nil, 0, fmt.Errorf("submission chunk at %d missing", off)
	}
	bb := sb.Bucket(bk)
	if bb == nil {
		return nil, 0, fmt.Errorf("submission chunk at %d missing", off)
	}
	k, v := floor(bb.Cursor(), be64(off))
	if k == nil {
		return nil, 0, fmt.Errorf("submission chunk at %d missing", off)
	}
	start := int64(binary.BigEndian.Uint64(k))
	if off < start || off >= start+int64(len(v)) {
		return nil, 0, fmt.Errorf("submission chunk at %d missing", off)
	}
	return v, start, nil
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, ChunkSize); return &b }}

func deleteChunks(tx *bolt.Tx, key []byte) error {
	err := tx.Bucket(bChunks).DeleteBucket(key)
	if errors.Is(err, berrors.ErrBucketNotFound) {
		return nil
	}
	return err
}
