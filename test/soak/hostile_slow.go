package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// hold sends head on a new connection, then one piece of drip every so
// often, until the relay answers or closes the connection, the hold limit
// passes, or the run ends. It records what happened and for how long.
func (h *hostileClient) hold(ctx context.Context, head []byte, every time.Duration, drip func() []byte) {
	c, err := h.dial(ctx)
	if err != nil {
		h.record(failed(ctx, err), 0)
		return
	}
	defer c.Close()
	start := time.Now()
	got := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			got <- ansClosed
			return
		}
		got <- answer(resp)
	}()
	if _, err := c.Write(head); err != nil {
		c.Close()
		h.record(failed(ctx, err), time.Since(start))
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	limit := time.NewTimer(h.cfg.hold)
	defer limit.Stop()
	for {
		select {
		case ans := <-got:
			h.record(ans, time.Since(start))
			return
		case <-tick.C:
			c.SetWriteDeadline(time.Now().Add(every))
			c.Write(drip()) // a failed write shows as a closed connection to the reader
		case <-limit.C:
			h.record(ansHeld, time.Since(start))
			return
		case <-ctx.Done():
			h.record(ansCut, time.Since(start))
			return
		}
	}
}

func (h *hostileClient) slowloris(ctx context.Context) {
	head := []byte("GET /api/v1/health HTTP/1.1\r\nHost: soak\r\nUser-Agent: slowloris\r\nX-Slow: ")
	h.hold(ctx, head, 3*time.Second, func() []byte { return []byte{'a' + byte(h.rng.IntN(26))} })
}

func (h *hostileClient) slowBody(ctx context.Context) {
	if h.variant(2) == 0 {
		// A single submission of 1 MiB, the most the relay takes in one
		// request: it holds a body slot while it arrives.
		head := fmt.Sprintf("POST /api/v1/desks/%s/submissions HTTP/1.1\r\nHost: soak\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
			deskID, 1<<20)
		h.hold(ctx, []byte(head), 2*time.Second, func() []byte { return []byte{byte(h.rng.Uint32())} })
		return
	}
	// The first piece of an upload, declared at 8 MiB, trickling the bytes
	// of a correct age header.
	tok, ans := h.createUpload(ctx, 8<<20)
	if tok == "" {
		h.record(ans, 0)
		return
	}
	head := fmt.Sprintf("PATCH /api/v1/uploads/%s HTTP/1.1\r\nHost: soak\r\nContent-Type: application/octet-stream\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n\r\n",
		tok, 8<<20)
	sample, i := h.t.fx.goodSample, 0
	h.hold(ctx, []byte(head), 2*time.Second, func() []byte {
		b := sample[i%len(sample) : i%len(sample)+1]
		i++
		return b
	})
}

// idleConns opens 50 connections and leaves them silent, or, every other
// time, sends one health request on each and then leaves them silent, and
// records for each whether and when the relay closed it.
func (h *hostileClient) idleConns(ctx context.Context) {
	const n = 50
	afterRequest := h.variant(2) == 1
	prefix := ""
	if afterRequest {
		prefix = afterRequestPrefix
	}
	type end struct {
		ans  string
		held time.Duration
	}
	ends := make(chan end, n)
	var conns []net.Conn
	for range n {
		c, err := h.dial(ctx)
		if err != nil {
			ends <- end{failed(ctx, err), 0}
			continue
		}
		conns = append(conns, c)
		go func() {
			start := time.Now()
			br := bufio.NewReader(c)
			if afterRequest {
				io.WriteString(c, "GET /api/v1/health HTTP/1.1\r\nHost: soak\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					ends <- end{"no answer to the request", time.Since(start)}
					return
				}
				if a := answer(resp); a != "200" {
					ends <- end{prefix + a, 0}
					return
				}
				start = time.Now() // idle from here
			}
			br.ReadByte()
			ends <- end{prefix + ansClosed, time.Since(start)}
		}()
	}
	limit := time.NewTimer(h.cfg.hold)
	defer limit.Stop()
	over := ""
	for got := 0; got < n; got++ {
		if over == "" {
			select {
			case e := <-ends:
				h.record(e.ans, e.held)
				continue
			case <-limit.C:
				over = ansHeld
			case <-ctx.Done():
				over = ansCut
			}
			for _, c := range conns {
				c.Close()
			}
		}
		e := <-ends
		switch e.ans {
		case prefix + ansClosed:
			e.ans = prefix + over
		case "no answer to the request":
			e.ans = over
		}
		h.record(e.ans, e.held)
	}
}
