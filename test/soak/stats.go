package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

// latency summarises the latencies of one kind of request, in milliseconds.
type latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func summarise(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }
	return latency{Count: len(s), P50: ms(quantile(s, 0.50)), P99: ms(quantile(s, 0.99)), Max: ms(s[len(s)-1])}
}

// quantile is the nearest-rank quantile q of the sorted s.
func quantile(s []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (l latency) String() string {
	if l.Count == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %s  p99 %s  max %s  (%d)", fmtMS(l.P50), fmtMS(l.P99), fmtMS(l.Max), l.Count)
}

func fmtMS(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%.2f s", ms/1000)
	}
	return fmt.Sprintf("%.1f ms", ms)
}

// tally counts outcomes by name. Its zero value is ready to use.
type tally struct {
	mu sync.Mutex
	m  map[string]int
}

func (t *tally) add(k string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]int{}
	}
	t.m[k] += n
}

func (t *tally) snapshot() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.m))
	for k, v := range t.m {
		out[k] = v
	}
	return out
}

// sortedKeys returns m's keys, the most frequent first.
func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// answer names an HTTP answer: its status and, for an error answer, the
// API's error code, like "429 busy". It reads and closes the body.
func answer(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb api.ErrorBody
	if resp.StatusCode >= 300 && json.Unmarshal(b, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		return fmt.Sprintf("%d %s", resp.StatusCode, eb.Error.Code)
	}
	return fmt.Sprint(resp.StatusCode)
}

// busyStatus reports whether an answer with this status says the relay is
// busy or full, which an honest client waits out: the abuse limits answer
// 429 and 503, a full spool 507.
func busyStatus(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || status == http.StatusInsufficientStorage
}

// outcome names the failure of a client call: the relay's answer, or what
// went wrong on the way. busy is set for answers an honest client waits
// out.
func outcome(err error) (name string, busy bool) {
	var ae *client.Error
	if errors.As(err, &ae) {
		name = fmt.Sprint(ae.Status)
		if ae.Body.Code != "" {
			name += " " + ae.Body.Code
		}
		return name, busyStatus(ae.Status)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within the request timeout", false
	}
	var ne *client.NetError
	if errors.As(err, &ne) {
		return "net: " + netReason(ne.Err), false
	}
	return "error: " + clip(err.Error(), 80), false
}

var digitsRE = regexp.MustCompile(`[0-9]+`)

// netReason is a short, stable name for a network error.
func netReason(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files (this program)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed (EOF)"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return clip(digitsRE.ReplaceAllString(s, "N"), 60)
}

// connReason names why a raw connection's read or write ended.
func connReason(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return netReason(oe.Err)
	}
	return netReason(err)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func toMiB(n int64) float64 { return float64(n) / (1 << 20) }
