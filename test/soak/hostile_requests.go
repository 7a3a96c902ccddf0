package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// createUpload starts an upload of length bytes; it returns the token, or
// the answer when there is none.
func (h *hostileClient) createUpload(ctx context.Context, length int64) (string, string) {
	body, _ := json.Marshal(api.CreateUpload{Length: length})
	req, _ := http.NewRequestWithContext(ctx, "POST", h.t.url+"/api/v1/desks/"+deskID+"/uploads", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.hc.Do(req)
	if err != nil {
		return "", failed(ctx, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", answer(resp)
	}
	defer resp.Body.Close()
	var st api.UploadState
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&st); err != nil || st.Upload == "" {
		return "", "201 without a token"
	}
	return st.Upload, "201"
}

func (h *hostileClient) hugeHeaders(ctx context.Context) {
	var req string
	switch h.variant(3) {
	case 0:
		req = "GET /api/v1/health HTTP/1.1\r\nHost: soak\r\nX-Big: " + strings.Repeat("a", 40<<10) + "\r\n\r\n"
	case 1:
		var b strings.Builder
		b.WriteString("GET /api/v1/health HTTP/1.1\r\nHost: soak\r\n")
		for i := range 3000 { // about 33 KiB: past MaxHeaderBytes and net/http's 4 KiB slack
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		req = b.String() + "\r\n"
	default:
		req = "GET /api/v1/uploads/" + strings.Repeat("A", 40<<10) + " HTTP/1.1\r\nHost: soak\r\n\r\n"
	}
	h.record(h.raw(ctx, []byte(req), 15*time.Second), 0)
}

func (h *hostileClient) randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(h.rng.Uint32())
	}
	return b
}

const submitPath = "/api/v1/desks/" + deskID + "/submissions"

var octet = http.Header{"Content-Type": {"application/octet-stream"}}

func (h *hostileClient) garbageBody(ctx context.Context) {
	var body []byte
	switch h.variant(5) {
	case 0:
		body = h.randomBytes(1<<10 + h.rng.IntN(63<<10))
	case 1:
		body = append([]byte("age-encryption.org/v1\n"), h.randomBytes(4<<10)...)
	case 2:
		// A correct header and a payload cut inside the nonce: no age file
		// is that long. (A cut inside the last chunk is not this: the relay
		// cannot see it, and accepts; the handler's age refuses it, §9.2 of
		// protocol.md.)
		s := h.t.fx.goodSample
		mac := bytes.Index(s, []byte("\n--- "))
		end := mac + 1 + bytes.IndexByte(s[mac+1:], '\n') + 1
		body = s[:end+8]
	case 3:
		body = []byte{} // nothing at all
	default:
		// Garbage as an upload's first piece.
		body = h.randomBytes(64 << 10)
		tok, ans := h.createUpload(ctx, int64(len(body)))
		if tok == "" {
			h.record(ans, 0)
			return
		}
		h.do(ctx, "PATCH", "/api/v1/uploads/"+tok, http.Header{"Content-Type": octet["Content-Type"], "Upload-Offset": {"0"}}, body)
		return
	}
	h.do(ctx, "POST", submitPath, octet, body)
}

func (h *hostileClient) wrongStanzas(ctx context.Context) {
	files := h.t.fx.wrongStanzas
	h.do(ctx, "POST", submitPath, octet, files[h.variant(len(files))])
}

func (h *hostileClient) oversize(ctx context.Context) {
	switch h.variant(4) {
	case 0:
		body, _ := json.Marshal(api.CreateUpload{Length: 1 << 40})
		h.do(ctx, "POST", "/api/v1/desks/"+deskID+"/uploads", http.Header{"Content-Type": {"application/json"}}, body)
	case 1:
		h.record(h.raw(ctx, []byte("POST "+submitPath+" HTTP/1.1\r\nHost: soak\r\nContent-Length: 5000000000\r\n\r\n"), 15*time.Second), 0)
	case 2:
		h.record(h.raw(ctx, []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n", submitPath, 2<<20)), 15*time.Second), 0)
	default:
		req := fmt.Sprintf("PATCH /api/v1/uploads/%s HTTP/1.1\r\nHost: soak\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n\r\n", h.token(), 1<<30)
		h.record(h.raw(ctx, []byte(req), 15*time.Second), 0)
	}
}

// token is a made-up upload token, shaped like a real one.
func (h *hostileClient) token() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(h.rng.Uint32())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (h *hostileClient) randomToken(ctx context.Context) {
	switch h.variant(4) {
	case 0:
		h.do(ctx, "GET", "/api/v1/uploads/"+h.token(), nil, nil)
	case 1:
		h.do(ctx, "PATCH", "/api/v1/uploads/"+h.token(), http.Header{"Content-Type": octet["Content-Type"], "Upload-Offset": {"0"}}, h.randomBytes(1<<10))
	case 2:
		h.do(ctx, "POST", "/api/v1/uploads/"+h.token()+"/complete", nil, nil)
	default:
		h.do(ctx, "GET", "/api/v1/uploads/"+strings.Repeat("Zz9_", 500), nil, nil)
	}
}

const inboxPath = "/api/v1/inbox"

func (h *hostileClient) replayedInbox(ctx context.Context) {
	h.do(ctx, "GET", inboxPath, h.t.captured.Clone(), nil)
}

func (h *hostileClient) forgedInbox(ctx context.Context) {
	_, stranger, _ := ed25519.GenerateKey(nil)
	handler := h.t.desk.Handlers[h.rng.IntN(len(h.t.desk.Handlers))]
	var auth string
	switch h.variant(4) {
	case 0: // a well-formed request signed by a key that is no handler's
		auth = crypto.SignRequest(stranger, "GET", inboxPath, nil, time.Now())
	case 1: // a handler's key ID with a stranger's signature
		auth = crypto.SignRequest(stranger, "GET", inboxPath, nil, time.Now())
		a, _ := crypto.ParseRequestAuth(auth)
		auth = strings.Replace(auth, "key="+a.KeyID, "key="+handler.Card().KeyID(), 1)
	case 2: // a handler's real signature, made an hour ago
		auth = crypto.SignRequest(handler.SigningKey(), "GET", inboxPath, nil, time.Now().Add(-time.Hour))
	default: // no signature at all, and too long
		auth = crypto.RequestScheme + " " + strings.Repeat("x", 600)
	}
	// The body's hash is right, so that only the signature is at fault.
	hdr := http.Header{}
	hdr.Set("Authorization", auth)
	hdr.Set(crypto.BodySHA256Header, crypto.BodySHA256(nil))
	h.do(ctx, "GET", inboxPath, hdr, nil)
}

func (h *hostileClient) abandonedUpload(ctx context.Context) {
	_, ans := h.createUpload(ctx, int64(1<<20+h.rng.IntN(7<<20)))
	h.record(ans, 0)
}
