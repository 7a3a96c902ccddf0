package relayproc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Status is what /proc/PID/status and /proc/PID/fd say of a process. Sizes
// are in bytes.
type Status struct {
	RSS     int64 // VmRSS: resident now
	Peak    int64 // VmHWM: the highest VmRSS so far
	Anon    int64 // RssAnon: the resident heap and stacks
	File    int64 // RssFile: resident file-backed pages, such as the mapped spool
	Threads int64 // OS threads
	FDs     int64 // open file descriptors (connections, the spool, pipes)
}

// ReadStatus reads a process's status from /proc. It fails where there is
// no /proc.
func ReadStatus(pid int) (Status, error) {
	var st Status
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, fmt.Errorf("reading process status: %w", err)
	}
	fields := map[string]*int64{"VmRSS": &st.RSS, "VmHWM": &st.Peak, "RssAnon": &st.Anon, "RssFile": &st.File, "Threads": &st.Threads}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), ":")
		p := fields[name]
		if p == nil {
			continue
		}
		v := strings.TrimSpace(value)
		kb := strings.HasSuffix(v, " kB")
		n, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
		if err != nil {
			return st, fmt.Errorf("reading process status: %s: %w", name, err)
		}
		if kb {
			n <<= 10
		}
		*p = n
	}
	if st.Peak == 0 {
		return st, errors.New("reading process status: no VmHWM in /proc status")
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		st.FDs = int64(len(ents))
	}
	return st, nil
}

// Point is one sample of a process's series.
type Point struct {
	Seconds float64 `json:"t_s"`
	RSSMiB  float64 `json:"rss_mib"`
	AnonMiB float64 `json:"anon_mib"`
	Threads int64   `json:"threads"`
	FDs     int64   `json:"fds"`
}

// Sampler reads a process's status periodically. It keeps the peak of each
// field, the sample with the highest VmRSS, the latest sample, and a point
// every five seconds.
type Sampler struct {
	start  time.Time
	stopc  chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	peak   Status // each field its own maximum
	maxRSS Status // the sample with the highest VmRSS
	last   Status
	series []Point
	ok     bool // at least one sample was read
}

// Sample starts sampling pid every interval.
func Sample(pid int, every time.Duration) *Sampler {
	s := &Sampler{start: time.Now(), stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		var lastPoint time.Time
		for {
			if st, err := ReadStatus(pid); err == nil {
				s.add(st, &lastPoint)
			}
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *Sampler) add(st Status, lastPoint *time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ok, s.last = true, st
	if st.RSS > s.maxRSS.RSS {
		s.maxRSS = st
	}
	s.peak = Status{RSS: max(s.peak.RSS, st.RSS), Peak: max(s.peak.Peak, st.Peak), Anon: max(s.peak.Anon, st.Anon),
		File: max(s.peak.File, st.File), Threads: max(s.peak.Threads, st.Threads), FDs: max(s.peak.FDs, st.FDs)}
	if time.Since(*lastPoint) >= 5*time.Second {
		*lastPoint = time.Now()
		s.series = append(s.series, Point{Seconds: time.Since(s.start).Round(100 * time.Millisecond).Seconds(),
			RSSMiB: mib(st.RSS), AnonMiB: mib(st.Anon), Threads: st.Threads, FDs: st.FDs})
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// Current returns the latest sample, and whether there is one.
func (s *Sampler) Current() (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.ok
}

// Peaks returns each field's highest value, the sample with the highest
// VmRSS, and whether any sample was read.
func (s *Sampler) Peaks() (each, maxRSS Status, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.maxRSS, s.ok
}

// Series returns the points taken every five seconds.
func (s *Sampler) Series() []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Point(nil), s.series...)
}

// Stop ends the sampling. It is safe to call more than once.
func (s *Sampler) Stop() {
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	<-s.done
}
