package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"

	"filippo.io/age"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

// deskID is the desk every submission goes to.
const deskID = "soak"

// newDesk makes the soak's desk: an admin and two classic handlers, every
// submission routed to both.
func newDesk() (*relayproc.Desk, error) {
	return relayproc.NewDesk(deskID, "Soak desk", 2, true, 0)
}

// sealed is one honest report, encrypted.
type sealed struct {
	data []byte
	sum  [32]byte
}

// sealReport seals a report with one attachment of size random bytes to the
// desk's handlers, the way 'amana submit' does, into memory.
func sealReport(cards []*crypto.Card, rng *rand.ChaCha8, size int) (*sealed, error) {
	att := make([]byte, size)
	rng.Read(att)
	asum := sha256.Sum256(att)
	report := &crypto.Report{
		Desk:      deskID,
		Language:  "en",
		Submitted: crypto.SubmittedAt(time.Now()),
		SealedBy:  crypto.SealedByClient,
		Answers:   []crypto.Answer{{Field: "message", Value: "soak test report"}},
	}
	files := []crypto.File{{
		Attachment: crypto.Attachment{Name: "evidence.bin", Size: int64(size), SHA256: hex.EncodeToString(asum[:]), Type: "application/octet-stream"},
		Body:       bytes.NewReader(att),
	}}
	rc, total, err := crypto.SealBundle(cards, report, files)
	if err != nil {
		return nil, fmt.Errorf("sealing a report: %w", err)
	}
	defer rc.Close()
	data := make([]byte, total)
	if _, err := io.ReadFull(rc, data); err != nil {
		return nil, fmt.Errorf("sealing a report: %w", err)
	}
	return &sealed{data: data, sum: sha256.Sum256(data)}, nil
}

// encryptTo age-encrypts plain to recips, for the hostile clients' files
// with the wrong recipients.
func encryptTo(plain []byte, recips ...age.Recipient) ([]byte, error) {
	var b bytes.Buffer
	w, err := age.Encrypt(&b, recips...)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// fixtures are the files hostile clients send, made once.
type fixtures struct {
	wrongStanzas [][]byte // age files for one handler, or three recipients
	goodSample   []byte   // a correct age file, whose header slow bodies trickle
}

func newFixtures(d *relayproc.Desk) (*fixtures, error) {
	recips, err := crypto.Recipients(d.Cards())
	if err != nil {
		return nil, err
	}
	stranger, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	plain := bytes.Repeat([]byte("not for this desk "), 200)
	f := &fixtures{}
	for _, rs := range [][]age.Recipient{recips[:1], {recips[0], recips[1], stranger.Recipient()}, {stranger.Recipient()}} {
		b, err := encryptTo(plain, rs...)
		if err != nil {
			return nil, fmt.Errorf("encrypting a hostile file: %w", err)
		}
		f.wrongStanzas = append(f.wrongStanzas, b)
	}
	s, err := sealReport(d.Cards(), rand.NewChaCha8([32]byte{7}), 8<<10)
	if err != nil {
		return nil, err
	}
	f.goodSample = s.data
	return f, nil
}

// target is a relay under load: its address, desk, and a handler request
// captured after its one legitimate use, for the hostile clients to replay.
type target struct {
	name     string
	url      string
	addr     string // host:port
	desk     *relayproc.Desk
	fx       *fixtures
	captured http.Header // the signature headers of a GET /api/v1/inbox already used once
}

// newTarget publishes the desk on the relay at base and captures a signed
// inbox request.
func newTarget(ctx context.Context, name, base string, d *relayproc.Desk, fx *fixtures) (*target, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	t := &target{name: name, url: base, addr: u.Host, desk: d, fx: fx}
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer hc.CloseIdleConnections()
	c, err := client.New(base, hc)
	if err != nil {
		return nil, err
	}
	c.Key = d.Admin.SigningKey()
	if _, err := c.Publish(ctx, deskID, d.Envelope); err != nil {
		return nil, fmt.Errorf("publishing the desk: %w", err)
	}
	const path = "/api/v1/inbox"
	t.captured = http.Header{}
	t.captured.Set("Authorization", crypto.SignRequest(d.Handlers[0].SigningKey(), "GET", path, nil, time.Now()))
	t.captured.Set(crypto.BodySHA256Header, crypto.BodySHA256(nil))
	req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	req.Header = t.captured.Clone()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the captured inbox request: %w", err)
	}
	if a := answer(resp); a != "200" {
		return nil, fmt.Errorf("the captured inbox request's one legitimate use got %s", a)
	}
	return t, nil
}

// finalChecks is what the relay does once the load is over.
type finalChecks struct {
	Health          string   `json:"health"` // "ok", or what went wrong
	HealthSeconds   float64  `json:"health_seconds"`
	FinalSubmission string   `json:"final_submission"` // "ok", or what went wrong
	FinalSeconds    float64  `json:"final_submission_seconds"`
	InboxListed     int      `json:"inbox_listed"`
	InboxExpected   int      `json:"inbox_expected"`
	Inbox           string   `json:"inbox"` // "ok", or what differs
	Problems        []string `json:"problems,omitempty"`
}

// check asks the relay for its health, sends one more honest submission,
// and compares the handler's inbox with the receipts the soak was given.
// failures is how many honest submissions failed other than busy: each may
// have been stored without its receipt arriving.
func (t *target) check(ctx context.Context, receipts map[string]bool, failures int) *finalChecks {
	fc := &finalChecks{}
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}}
	defer hc.CloseIdleConnections()
	c, _ := client.New(t.url, hc)

	// Health: the relay has 30 seconds to answer after the load.
	start := time.Now()
	fc.Health = "no answer"
	for time.Since(start) < 30*time.Second && ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.Health(cctx)
		cancel()
		if err == nil {
			fc.Health = "ok"
			break
		}
		fc.Health, _ = outcome(err)
		time.Sleep(time.Second)
	}
	fc.HealthSeconds = time.Since(start).Seconds()
	if fc.Health != "ok" {
		fc.Problems = append(fc.Problems, fmt.Sprintf("%s relay: /api/v1/health did not answer within 30 s of the load ending (%s)", t.name, fc.Health))
	}

	// One more honest submission, waiting out busy answers for a minute.
	start = time.Now()
	s, err := sealReport(t.desk.Cards(), rand.NewChaCha8([32]byte{9}), 4<<10)
	if err != nil {
		fc.FinalSubmission = err.Error()
	} else {
		for {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			rc, err := c.Submit(cctx, deskID, "", bytes.NewReader(s.data), int64(len(s.data)), nil)
			cancel()
			if err == nil {
				if rc.Size != int64(len(s.data)) || rc.SHA256 != hex.EncodeToString(s.sum[:]) {
					fc.FinalSubmission = "the receipt does not match what was sent"
				} else {
					fc.FinalSubmission = "ok"
					receipts[rc.ID] = true
				}
				break
			}
			name, busy := outcome(err)
			fc.FinalSubmission = name
			if !busy || time.Since(start) > time.Minute || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Second)
		}
	}
	fc.FinalSeconds = time.Since(start).Seconds()
	if fc.FinalSubmission != "ok" {
		fc.Problems = append(fc.Problems, fmt.Sprintf("%s relay: the final honest submission failed (%s)", t.name, fc.FinalSubmission))
	}

	// The inbox lists exactly the submissions the relay gave receipts for:
	// nothing lost, and nothing a hostile client sent.
	c.Key = t.desk.Handlers[1].SigningKey()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	items, err := c.Inbox(cctx)
	cancel()
	fc.InboxExpected = len(receipts)
	missing, extra := 0, 0
	if err != nil {
		name, _ := outcome(err)
		fc.Inbox = "inbox request failed: " + name
	} else {
		fc.InboxListed = len(items)
		listed := map[string]bool{}
		for _, it := range items {
			listed[it.ID] = true
		}
		for id := range receipts {
			if !listed[id] {
				missing++
			}
		}
		for id := range listed {
			if !receipts[id] {
				extra++
			}
		}
		fc.Inbox = "ok"
		if missing+extra > 0 {
			fc.Inbox = fmt.Sprintf("%d receipted submission(s) missing, %d listed without a receipt", missing, extra)
		}
	}
	if fc.Inbox != "ok" && !(err == nil && missing == 0 && extra <= failures) {
		fc.Problems = append(fc.Problems, fmt.Sprintf("%s relay: inbox check: %s", t.name, fc.Inbox))
	}
	return fc
}

var errInterrupted = errors.New("interrupted")
