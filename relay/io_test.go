package relay

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// drip is a body that brings n bytes per read while a fake clock moves on
// by step.
type drip struct {
	clock *time.Time
	step  time.Duration
	n     int
	left  int
}

func (d *drip) Read(b []byte) (int, error) {
	*d.clock = d.clock.Add(d.step)
	if d.left == 0 {
		return 0, io.EOF
	}
	n := min(d.n, d.left, len(b))
	d.left -= n
	return n, nil
}

func (d *drip) Close() error { return nil }

func TestProgressReaderFloor(t *testing.T) {
	tests := []struct {
		name    string
		step    time.Duration
		perRead int
		total   int
		stalled bool
	}{
		{"fast", time.Millisecond, 32 << 10, 1 << 20, false},
		{"slow but above the floor", time.Second, 300, 200 << 10, false},
		{"one byte every 59 seconds", 59 * time.Second, 1, 100, true},
		{"just under the floor", time.Second, 250, 200 << 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := time.Unix(1e9, 0)
			body := &drip{clock: &clock, step: tt.step, n: tt.perRead, left: tt.total}
			p := &progressReader{r: body, rc: http.NewResponseController(httptest.NewRecorder()),
				idle: time.Minute, floor: 256 * 60, now: func() time.Time { return clock }}
			n, err := io.Copy(io.Discard, p)
			if got := errors.Is(err, errStalled); got != tt.stalled {
				t.Fatalf("read %d bytes, err %v; want stalled=%v", n, err, tt.stalled)
			}
			if !tt.stalled && n != int64(tt.total) {
				t.Fatalf("read %d bytes, want %d", n, tt.total)
			}
		})
	}
}
