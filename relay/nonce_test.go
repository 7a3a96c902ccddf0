package relay

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"
)

// holds reports whether the cache remembers key's nonce.
func (c *nonceCache) holds(key string, nonce [16]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.keys[key]
	if k == nil {
		return false
	}
	_, ok := k.seen[nonce]
	return ok
}

// floorOf is key's floor, and whether the cache has the key at all.
func (c *nonceCache) floorOf(key string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.keys[key]
	if k == nil {
		return 0, false
	}
	return k.floor, true
}

// nonceN is a distinct nonce for each n.
func nonceN(n int) (b [16]byte) {
	binary.BigEndian.PutUint64(b[8:], uint64(n))
	return b
}

const testWindow = 5 * time.Minute

// TestNonceCacheRules runs small scripts of adds against a cache with a
// quota of 4 and checks each answer.
func TestNonceCacheRules(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	s := t0.Unix()
	type step struct {
		key   string
		nonce int
		ts    int64         // signing time
		at    time.Duration // relay clock, after t0
		want  bool
	}
	for _, tc := range []struct {
		name      string
		steps     []step
		wantFloor map[string]int64
		wantHeld  map[string][]int // the nonces each key holds at the end
		gone      []string         // keys the cache must have forgotten
	}{
		{name: "a nonce is accepted once", steps: []step{
			{"a", 1, s, 0, true}, {"a", 1, s, 0, false}, {"a", 1, s + 1, 0, false},
		}},
		{name: "keys do not share nonces", steps: []step{
			{"a", 1, s, 0, true}, {"b", 1, s, 0, true},
		}},
		{name: "a full key drops its oldest second and raises its floor", steps: []step{
			{"a", 1, s, 0, true}, {"a", 2, s, 0, true}, {"a", 3, s + 1, 0, true}, {"a", 4, s + 2, 0, true},
			{"a", 5, s + 3, 0, true}, // full: drops nonces 1 and 2 of second s, floor s
			{"a", 1, s, 0, false},    // the replay of a dropped nonce
			{"a", 6, s, 0, false},    // anything else signed at the floor
			{"a", 7, s + 1, 0, true}, // above the floor: full again
			{"a", 8, s + 4, 0, true}, // drops nonces 3 and 7 of second s+1, floor s+1
			{"a", 3, s + 1, 0, false},
			{"a", 7, s + 1, 0, false},
			{"a", 9, s + 2, 0, true},
			{"a", 4, s + 2, 0, false}, // still held
		}, wantFloor: map[string]int64{"a": s + 1}, wantHeld: map[string][]int{"a": {4, 5, 8, 9}}},
		{name: "a full key refuses a request no newer than its oldest second", steps: []step{
			{"a", 1, s + 9, 0, true}, {"a", 2, s + 9, 0, true}, {"a", 3, s + 9, 0, true}, {"a", 4, s + 9, 0, true},
			{"a", 5, s + 9, 0, false}, // drops all four, floor s+9
			{"a", 6, s, 0, false},     // an older time is below the floor
			{"a", 1, s + 9, 0, false}, // the dropped nonces stay refused
			{"a", 7, s + 10, 0, true},
		}, wantFloor: map[string]int64{"a": s + 9}, wantHeld: map[string][]int{"a": {7}}},
		{name: "one key's flood leaves another key alone", steps: []step{
			{"b", 1, s, 0, true},
			{"a", 1, s + 290, 0, true}, {"a", 2, s + 290, 0, true}, {"a", 3, s + 290, 0, true}, {"a", 4, s + 290, 0, true},
			{"a", 5, s + 290, 0, false}, {"a", 6, s + 290, 0, false}, {"a", 7, s, 0, false},
			{"b", 2, s, 0, true}, {"b", 3, s, 0, true}, {"b", 4, s, 0, true},
			{"b", 1, s, 0, false},
		}, wantFloor: map[string]int64{"a": s + 290, "b": 0}, wantHeld: map[string][]int{"a": nil, "b": {1, 2, 3, 4}}},
		{name: "entries expire with the window", steps: []step{
			{"a", 1, s, 0, true}, {"a", 2, s, 0, true}, {"a", 3, s, 0, true}, {"a", 4, s, 0, true},
			// At t0+window+1s all four have expired: room without eviction.
			{"a", 5, s + 301, testWindow + time.Second, true},
			{"a", 6, s + 301, testWindow + time.Second, true},
			{"a", 7, s + 301, testWindow + time.Second, true},
			{"a", 8, s + 301, testWindow + time.Second, true},
		}, wantFloor: map[string]int64{"a": 0}},
		{name: "a key with nothing left is forgotten", steps: []step{
			{"a", 1, s, 0, true},
			{"b", 1, s + 360, 6 * time.Minute, true}, // sweeps: a's entry has expired
		}, gone: []string{"a"}},
		{name: "a key keeps its floor while it matters", steps: []step{
			{"a", 1, s + 290, 0, true}, {"a", 2, s + 290, 0, true}, {"a", 3, s + 290, 0, true}, {"a", 4, s + 290, 0, true},
			{"a", 5, s + 290, 0, false}, // drops all four: no entry left, floor s+290
			{"b", 1, s + 60, time.Minute, true},
			{"a", 1, s + 290, time.Minute, false}, // refused after a sweep
			{"b", 2, s + 540, 9 * time.Minute, true},
			{"a", 2, s + 290, 9 * time.Minute, false}, // s+290 is still in the window
			{"b", 3, s + 600, 10 * time.Minute, true}, // and now it is not
		}, gone: []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &nonceCache{quota: 4}
			for i, st := range tc.steps {
				if got := c.add(st.key, nonceN(st.nonce), st.ts, t0.Add(st.at), testWindow); got != st.want {
					t.Fatalf("step %d (key %s, nonce %d, ts %+d, at %v): %v, want %v", i, st.key, st.nonce, st.ts-s, st.at, got, st.want)
				}
			}
			for key, want := range tc.wantFloor {
				if got, _ := c.floorOf(key); got != want {
					t.Errorf("floor of %s: %+d, want %+d", key, got-s, want-s)
				}
			}
			for key, want := range tc.wantHeld {
				var got []int
				for n := range 16 {
					if c.holds(key, nonceN(n)) {
						got = append(got, n)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s holds nonces %v, want %v", key, got, want)
				}
			}
			for _, key := range tc.gone {
				if _, ok := c.floorOf(key); ok {
					t.Errorf("key %s is still in the cache", key)
				}
			}
		})
	}
}

// TestNonceCacheHonestFastPull: a key signing with the relay's time, so
// fast that its quota fills many times over, is never refused; its floor
// trails behind the clock. A flood from another key changes nothing.
func TestNonceCacheHonestFastPull(t *testing.T) {
	c := &nonceCache{}
	t0 := time.Unix(1_800_000_000, 0)
	const perSecond = 2 * nonceQuota / 300 // twice what fills the quota in a window
	n := 0
	for sec := range 600 {
		now := t0.Add(time.Duration(sec) * time.Second)
		for range perSecond {
			n++
			if !c.add("honest", nonceN(n), now.Unix(), now, testWindow) {
				t.Fatalf("request %d, signed now at second %d, refused", n, sec)
			}
			c.add("flooder", nonceN(n), now.Unix()+290, now, testWindow)
		}
		if floor, _ := c.floorOf("honest"); floor >= now.Unix() {
			t.Fatalf("second %d: floor %d is not below now", sec, floor-t0.Unix())
		}
	}
	if floor, _ := c.floorOf("honest"); floor == 0 {
		t.Fatal("the quota never filled: this test proves nothing")
	}
	if got := len(c.keys["honest"].seen); got > nonceQuota || got != len(c.keys["honest"].order) {
		t.Fatalf("%d entries, %d in the heap, quota %d", got, len(c.keys["honest"].order), nonceQuota)
	}
}
