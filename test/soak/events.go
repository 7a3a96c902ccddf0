package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
)

// eventLog is the relay's log of events (its stderr, or its Eventf): it
// counts the lines by kind and keeps the last lines, to show when something
// fails.
type eventLog struct {
	prefix  string
	mu      sync.Mutex
	partial []byte
	tail    []string
	counts  tally
}

const eventTail = 40

func (l *eventLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		line, rest, ok := bytes.Cut(l.partial, []byte("\n"))
		if !ok {
			break
		}
		l.partial = rest
		s := strings.TrimPrefix(string(line), l.prefix)
		l.counts.add(eventKind(s), 1)
		l.tail = append(l.tail, s)
		if len(l.tail) > eventTail {
			l.tail = l.tail[1:]
		}
	}
	return len(p), nil
}

func (l *eventLog) event(format string, args ...any) {
	fmt.Fprintf(l, format+"\n", args...)
}

func (l *eventLog) tailText() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.tail, "\n")
}

// eventKind is the kind of an event line: its text up to the first colon
// after any "http: " prefix, with numbers replaced, so that lines of the same
// kind count together.
func eventKind(s string) string {
	head, rest := "", s
	if r, ok := strings.CutPrefix(s, "http: "); ok {
		head, rest = "http: ", r
	}
	if i := strings.Index(rest, ":"); i > 0 {
		rest = rest[:i]
	}
	return clip(head+digitsRE.ReplaceAllString(rest, "N"), 80)
}

// routineEvent reports whether an event kind is part of every run.
func routineEvent(kind string) bool {
	for _, p := range []string{"started", "desk \"", "shutting down", "sweep"} {
		if strings.HasPrefix(kind, p) {
			return true
		}
	}
	return false
}
