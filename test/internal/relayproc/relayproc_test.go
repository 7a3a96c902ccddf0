package relayproc

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLineWatcher(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string // "" for nothing found
	}{
		{"one write", []string{"starting\namana-relay: listening on http://127.0.0.1:5\nmore\n"}, "http://127.0.0.1:5"},
		{"split across writes", []string{"amana-relay: list", "ening on http://127.0.0.1:6", "\n"}, "http://127.0.0.1:6"},
		{"no newline yet", []string{"amana-relay: listening on http://127.0.0.1:7"}, ""},
		{"prefix not at the start", []string{"x amana-relay: listening on http://127.0.0.1:8\n"}, ""},
		{"only the first", []string{"amana-relay: listening on a\namana-relay: listening on b\n"}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found := make(chan string, 1)
			w := &LineWatcher{Prefix: ListeningPrefix, Found: found}
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			var got string
			select {
			case got = <-found:
			default:
			}
			if got != tt.want {
				t.Fatalf("found %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTailBuffer(t *testing.T) {
	b := &TailBuffer{Max: 8}
	b.Write([]byte("0123"))
	b.Write([]byte("456789ab"))
	if got := b.String(); got != "456789ab" {
		t.Fatalf("tail %q", got)
	}
}

func TestReadStatus(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no /proc")
	}
	st, err := ReadStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.RSS <= 0 || st.Peak < st.RSS || st.Anon <= 0 || st.Threads < 1 || st.FDs < 3 {
		t.Fatalf("implausible status %+v", st)
	}
	s := Sample(os.Getpid(), 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	s.Stop()
	s.Stop()
	each, maxRSS, ok := s.Peaks()
	if !ok || each.RSS < maxRSS.RSS || maxRSS.RSS <= 0 || len(s.Series()) != 1 {
		t.Fatalf("sampler: ok %v, each %+v, max %+v, %d points", ok, each, maxRSS, len(s.Series()))
	}
}

func TestStartStop(t *testing.T) {
	sh := "/bin/sh"
	if _, err := os.Stat(sh); err != nil {
		t.Skip("no /bin/sh")
	}
	p, err := Start(sh, []string{"RELAYPROC_TEST=x"}, nil, nil, "-c", `echo "err $RELAYPROC_TEST" >&2; exit 3`)
	if err != nil {
		t.Fatal(err)
	}
	<-p.Exited()
	if clean, how := p.Stop(os.Interrupt, time.Second); clean || !strings.Contains(how, "3") {
		t.Fatalf("Stop = %v, %q", clean, how)
	}
	if !strings.Contains(p.Tail(), "err x") {
		t.Fatalf("Tail = %q", p.Tail())
	}
	p, err = Start(sh, nil, nil, nil, "-c", "trap '' INT; exec sleep 30")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if clean, how := p.Stop(os.Interrupt, 200*time.Millisecond); clean || !strings.Contains(how, "killed") {
		t.Fatalf("Stop of a process ignoring the signal = %v, %q", clean, how)
	}
}
