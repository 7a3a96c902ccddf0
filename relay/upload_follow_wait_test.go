package relay

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/amana-relay/amana/relay/api"
)

// TestFollowerWaitIsBounded: a follower waits for the piece before it at
// most the idle timeout, then gets 409 offset_mismatch having stored
// nothing, even while that piece is still arriving (§10.6).
func TestFollowerWaitIsBounded(t *testing.T) {
	f := newFixture(t)
	f.srv.cfg.IdleTimeout = 300 * time.Millisecond
	plain := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{7}).Read(plain)
	ct := encrypt(t, plain, f.alice, f.bob)
	const piece = 2 << 20
	body, _ := json.Marshal(api.CreateUpload{Length: int64(len(ct)), Category: "incident"})
	var st api.UploadState
	json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/uploads", nil, body, 201).Body).Decode(&st)
	patch := func(off int64, r io.Reader, n int64) *http.Request {
		req, _ := http.NewRequest("PATCH", f.ts.URL+"/api/v1/uploads/"+st.Upload, r)
		req.ContentLength = n
		req.Header.Set("Upload-Offset", strconv.FormatInt(off, 10))
		req.Header.Set("Content-Type", "application/octet-stream")
		return req
	}

	// The first piece trickles: 1 KiB every 20 ms, well within the idle
	// timeout, until the follower has answered.
	pr, pw := io.Pipe()
	followerDone := make(chan struct{})
	reading := make(chan struct{}) // the relay reads the piece past its header
	firstDone := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(patch(0, pr, piece))
		if err != nil {
			firstDone <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		firstDone <- resp.StatusCode
	}()
	go func() {
		off := 64 << 10
		pw.Write(ct[:off])
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for trickle := true; trickle; {
			select {
			case <-followerDone:
				trickle = false
			case <-tick.C:
				pw.Write(ct[off : off+1024])
				if off += 1024; off == 64<<10+3*1024 {
					close(reading)
				}
			}
		}
		pw.Write(ct[off:piece])
		pw.Close()
	}()
	<-reading

	resp := f.req(patch(piece, bytes.NewReader(ct[piece:]), int64(len(ct)-piece)), 409)
	var eb api.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || eb.Error == nil || eb.Error.Code != "offset_mismatch" {
		t.Fatalf("the follower: %v %+v", err, eb.Error)
	}
	select {
	case code := <-firstDone:
		t.Fatalf("the first piece ended (%d) before the follower answered: the follower's wait was not bounded", code)
	default:
	}
	close(followerDone)
	if code := <-firstDone; code != 200 {
		t.Fatalf("the first piece: status %d", code)
	}
	json.NewDecoder(f.do("GET", "/api/v1/uploads/"+st.Upload, nil, nil, 200).Body).Decode(&st)
	if st.Offset != piece {
		t.Fatalf("offset %d after the follower gave up, want %d", st.Offset, piece)
	}
}
