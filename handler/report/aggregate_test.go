package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/journal"
)

var monday = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday

// randomCases draws cases over a few weeks with skewed cell sizes, so that
// many cells are small.
func randomCases(r *rand.Rand) []Case {
	cats := []string{"phishing", "spyware", "harassment", "other"}[:1+r.IntN(4)]
	sevs := []string{"high", "low", ""}[:1+r.IntN(3)]
	chans := []string{ChannelCLI, ChannelBrowser, ChannelClient, ChannelNoJS, ChannelSelf, ChannelUnknown}[:1+r.IntN(6)]
	var cs []Case
	for w := 0; w < 1+r.IntN(3); w++ {
		for _, cat := range cats {
			for _, sev := range sevs {
				for _, ch := range chans {
					n := r.IntN(4)
					if r.IntN(3) == 0 {
						n = r.IntN(15)
					}
					for range n {
						rc := monday.AddDate(0, 0, 7*w).Add(time.Duration(r.IntN(7*24)) * time.Hour)
						c := Case{Category: cat, Severity: sev, Channel: ch, Received: rc}
						if r.IntN(4) > 0 {
							c.Acknowledged = rc.Add(time.Duration(r.IntN(90)) * time.Minute)
						}
						cs = append(cs, c)
					}
				}
			}
		}
	}
	return cs
}

// TestSuppressionProperty: for random tables, every published count is
// the true one and none is from 1 to k-1, and every suppressed count can
// take another value consistent with everything published: a second
// non-negative table, found by linear algebra over the rationals, with the
// same published counts, the same row, column and grand totals where those
// are published, and a different value in that cell.
func TestSuppressionProperty(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 15))
		cs := randomCases(r)
		k := 2 + r.IntN(6)
		a, err := MakeAggregate(cs, AggregateOptions{K: k})
		if err != nil {
			t.Fatal(err)
		}
		checkAggregate(t, fmt.Sprintf("seed %d k %d", seed, k), cs, a)
	}
}

// TestSuppressionCases: tables whose suppression is known by hand.
func TestSuppressionCases(t *testing.T) {
	tests := []struct {
		name string
		v    [][]int // interior only
		k    int
		want int // suppressed cells, margins included
	}{
		{"nothing small", [][]int{{5, 6}, {7, 8}}, 5, 0},
		{"one small cell needs three more", [][]int{{1, 6}, {7, 8}}, 5, 4},
		{"zeros are published", [][]int{{0, 6}, {7, 0}}, 5, 0},
		{"two small cells in a row", [][]int{{1, 2, 9}, {7, 8, 9}}, 5, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := augment(tt.v)
			s := suppress(v, tt.k)
			n := 0
			for i := range s {
				for j := range s[i] {
					if s[i][j] {
						n++
					}
				}
			}
			if n != tt.want {
				t.Errorf("suppressed %d cells, want %d: %v", n, tt.want, s)
			}
			checkTable(t, tt.name, v, s)
		})
	}
}

func augment(in [][]int) [][]int {
	R, C := len(in), len(in[0])
	v := make([][]int, R+1)
	for i := range v {
		v[i] = make([]int, C+1)
	}
	for i := range in {
		for j := range in[i] {
			v[i][j] = in[i][j]
			v[i][C] += in[i][j]
			v[R][j] += in[i][j]
			v[R][C] += in[i][j]
		}
	}
	return v
}

// checkAggregate recounts cs period by period and checks a against it.
func checkAggregate(t *testing.T, name string, cs []Case, a *Aggregate) {
	t.Helper()
	type key struct{ start, kind, cat, sev, ch string }
	want := map[key]int{}
	for _, c := range cs {
		sev := c.Severity
		if sev == "" {
			sev = NoSeverity
		}
		start := day(periodStart(a.Period, c.Received))
		want[key{start, KindCell, c.Category, sev, c.Channel}]++
		want[key{start, KindCategoryTotal, c.Category, All, All}]++
		want[key{start, KindColumnTotal, All, sev, c.Channel}]++
		want[key{start, KindTotal, All, All, All}]++
	}
	periods := map[string][]Row{}
	var order []string
	for _, r := range a.Rows {
		if _, ok := periods[r.Start]; !ok {
			order = append(order, r.Start)
		}
		periods[r.Start] = append(periods[r.Start], r)
	}
	for _, p := range order {
		rows := periods[p]
		R, C := len(a.Categories), len(a.Severities)*len(a.Channels)
		if len(rows) != (R+1)*(C+1) {
			t.Fatalf("%s: period %s has %d rows, want %d", name, p, len(rows), (R+1)*(C+1))
		}
		v := make([][]int, R+1)
		s := make([][]bool, R+1)
		for i := range v {
			v[i] = make([]int, C+1)
			s[i] = make([]bool, C+1)
		}
		for n, r := range rows {
			i, j := n/(C+1), n%(C+1)
			truth := want[key{p, r.Kind, r.Category, r.Severity, r.Channel}]
			v[i][j] = truth
			if r.Suppressed != (r.Count == nil) {
				t.Fatalf("%s: row %+v: suppressed and count disagree", name, r)
			}
			if r.Suppressed {
				s[i][j] = true
				if r.Acknowledge != nil || r.FirstResponse != nil || r.Resolve != nil {
					t.Errorf("%s: suppressed row %+v publishes durations", name, r)
				}
				continue
			}
			if *r.Count != truth {
				t.Errorf("%s: row %+v: count %d, want %d", name, r, *r.Count, truth)
			}
			if *r.Count >= 1 && *r.Count < a.K {
				t.Errorf("%s: row %+v: a count below k=%d is published", name, r, a.K)
			}
		}
		checkTable(t, name+" "+p, v, s)
	}
}

// checkTable proves that every suppressed cell of the augmented table v
// (margins in the last row and column) has a feasible interval wider than
// zero given the published cells: it solves the equations the published
// values leave on the suppressed ones, and for each suppressed cell builds
// a second non-negative table that keeps every published value and every
// equation but changes that cell.
func checkTable(t *testing.T, name string, v [][]int, s [][]bool) {
	t.Helper()
	R, C := len(v)-1, len(v[0])-1
	type cell struct{ i, j int }
	var unknown []cell
	col := map[cell]int{}
	for i := range s {
		for j := range s[i] {
			if s[i][j] {
				if v[i][j] < 1 {
					t.Fatalf("%s: cell (%d,%d) = %d suppressed: zeros are published", name, i, j, v[i][j])
				}
				col[cell{i, j}] = len(unknown)
				unknown = append(unknown, cell{i, j})
			}
		}
	}
	if len(unknown) == 0 {
		return
	}
	// The equations, each a list of (cell, coefficient) = 0.
	type term struct {
		c    cell
		coef int64
	}
	var eqs [][]term
	for i := 0; i <= R; i++ { // each row's cells sum to its total
		var e []term
		for j := 0; j < C; j++ {
			e = append(e, term{cell{i, j}, 1})
		}
		eqs = append(eqs, append(e, term{cell{i, C}, -1}))
	}
	for j := 0; j <= C; j++ { // each column's cells sum to its total
		var e []term
		for i := 0; i < R; i++ {
			e = append(e, term{cell{i, j}, 1})
		}
		eqs = append(eqs, append(e, term{cell{R, j}, -1}))
	}
	// The homogeneous system on the unknowns: its null space is how the
	// suppressed values can move together with everything published kept.
	n := len(unknown)
	m := make([][]*big.Rat, len(eqs))
	for r, e := range eqs {
		m[r] = make([]*big.Rat, n)
		for x := range m[r] {
			m[r][x] = new(big.Rat)
		}
		for _, tm := range e {
			if x, ok := col[tm.c]; ok {
				m[r][x].Add(m[r][x], big.NewRat(tm.coef, 1))
			}
		}
	}
	pivots := rref(m)
	isPivot := map[int]int{} // column -> row
	for r, c := range pivots {
		isPivot[c] = r
	}
	var free []int
	for x := 0; x < n; x++ {
		if _, ok := isPivot[x]; !ok {
			free = append(free, x)
		}
	}
	// nullVector is the null-space vector with free variable f at 1.
	nullVector := func(f int) []*big.Rat {
		vec := make([]*big.Rat, n)
		for x := range vec {
			vec[x] = new(big.Rat)
		}
		vec[f].SetInt64(1)
		for r, c := range pivots {
			vec[c].Neg(m[r][f])
		}
		return vec
	}
	for x, u := range unknown {
		var vec []*big.Rat
		for _, f := range free {
			cand := nullVector(f)
			if cand[x].Sign() != 0 {
				vec = cand
				break
			}
		}
		if vec == nil {
			t.Errorf("%s: suppressed cell (%d,%d) = %d is determined by what is published", name, u.i, u.j, v[u.i][u.j])
			continue
		}
		// Scale so that no unknown moves by more than 1: each holds >= 1.
		maxAbs := new(big.Rat)
		for _, y := range vec {
			if a := new(big.Rat).Abs(y); a.Cmp(maxAbs) > 0 {
				maxAbs = a
			}
		}
		alt := make([][]*big.Rat, R+1)
		for i := range alt {
			alt[i] = make([]*big.Rat, C+1)
			for j := range alt[i] {
				alt[i][j] = big.NewRat(int64(v[i][j]), 1)
				if y, ok := col[cell{i, j}]; ok {
					d := new(big.Rat).Quo(vec[y], maxAbs)
					alt[i][j].Add(alt[i][j], d)
				}
				if alt[i][j].Sign() < 0 {
					t.Fatalf("%s: the other table has a negative count", name)
				}
			}
		}
		if alt[u.i][u.j].Cmp(big.NewRat(int64(v[u.i][u.j]), 1)) == 0 {
			t.Fatalf("%s: the other table keeps cell (%d,%d)", name, u.i, u.j)
		}
		for _, e := range eqs {
			sum := new(big.Rat)
			for _, tm := range e {
				sum.Add(sum, new(big.Rat).Mul(alt[tm.c.i][tm.c.j], big.NewRat(tm.coef, 1)))
			}
			if sum.Sign() != 0 {
				t.Fatalf("%s: the other table breaks a total", name)
			}
		}
	}
}

// rref reduces m in place to reduced row echelon form and returns the
// pivot column of each nonzero row.
func rref(m [][]*big.Rat) []int {
	var pivots []int
	row := 0
	cols := 0
	if len(m) > 0 {
		cols = len(m[0])
	}
	for c := 0; c < cols && row < len(m); c++ {
		p := -1
		for r := row; r < len(m); r++ {
			if m[r][c].Sign() != 0 {
				p = r
				break
			}
		}
		if p < 0 {
			continue
		}
		m[row], m[p] = m[p], m[row]
		inv := new(big.Rat).Inv(m[row][c])
		for x := range m[row] {
			m[row][x].Mul(m[row][x], inv)
		}
		for r := range m {
			if r == row || m[r][c].Sign() == 0 {
				continue
			}
			f := new(big.Rat).Set(m[r][c])
			for x := range m[r] {
				m[r][x].Sub(m[r][x], new(big.Rat).Mul(f, m[row][x]))
			}
		}
		pivots = append(pivots, c)
		row++
	}
	return pivots
}

const marker = "MARKER-7f3a-never-published"

// TestAggregateFromStates: an aggregate built from journal states carries
// neither the case IDs nor anything typed on them, nor a time finer than
// the period, and its CSV has the HXL hashtag row second.
func TestAggregateFromStates(t *testing.T) {
	var cs []Case
	final := func(s string) bool { return s == "closed" }
	for i := range 12 {
		id := fmt.Sprintf("%032x", 0xabc000+i)
		rc := monday.Add(time.Duration(i*7) * time.Hour)
		s := &journal.State{
			Case: id, Desk: "helpdesk", Category: "phishing", Received: rc.Format(time.RFC3339),
			Status: "closed", Severity: "high", CloseReason: "completed",
			Tags:         []string{marker},
			Notes:        []journal.Note{{Author: "k", Time: rc.Format(time.RFC3339), Text: marker}},
			Replies:      []journal.Response{{Author: "k", Time: rc.Format(time.RFC3339), Reply: marker}},
			Referral:     &crypto.Referral{To: marker, Outcome: marker},
			Acknowledged: rc.Add(90 * time.Minute).Format(time.RFC3339),
		}
		cs = append(cs, FromState(s, "", ChannelClient, final))
	}
	a, err := MakeAggregate(cs, AggregateOptions{Period: PeriodMonth})
	if err != nil {
		t.Fatal(err)
	}
	var jb, cb bytes.Buffer
	if err := a.WriteJSON(&jb); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteCSV(&cb); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{jb.String(), cb.String()} {
		if strings.Contains(out, marker) || strings.Contains(out, "abc00") {
			t.Fatalf("the aggregate carries a case's text or ID:\n%s", out)
		}
		if strings.Contains(out, "T0") || strings.Contains(out, ":00") {
			t.Fatalf("the aggregate carries a time finer than a day:\n%s", out)
		}
	}
	var back Aggregate
	if err := json.Unmarshal(jb.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Schema != AggregateSchema || back.From != "2026-11-01" || back.To != "2026-11-30" {
		t.Errorf("schema %q from %q to %q", back.Schema, back.From, back.To)
	}
	recs, err := csv.NewReader(&cb).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 3 || recs[1][0] != "#date+start" || recs[1][6] != "#indicator+num+reports" {
		t.Fatalf("csv head %q", recs[:2])
	}
	// One category, severity and channel: the cell and its totals are 12.
	for _, r := range back.Rows {
		if r.Count == nil || *r.Count != 12 {
			t.Errorf("row %+v, want a count of 12", r)
		}
		if r.Acknowledge == nil || r.Acknowledge.Median != 1 {
			t.Errorf("row %+v, want a median of 1 hour to acknowledge", r)
		}
	}
}

func TestAggregateOptions(t *testing.T) {
	for _, o := range []AggregateOptions{{Period: "day"}, {K: 1}, {K: -3}} {
		if _, err := MakeAggregate(nil, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// FuzzSuppress: any small table, any k: no suppressed cell is determined
// by what is published, and no count from 1 to k-1 is published.
func FuzzSuppress(f *testing.F) {
	f.Add([]byte{3, 2, 1, 6, 7, 8, 9, 1}, uint8(5))
	f.Add([]byte{2, 3, 0, 0, 1, 9, 9, 2}, uint8(3))
	f.Add([]byte{1, 1, 4}, uint8(5))
	f.Fuzz(func(t *testing.T, b []byte, kb uint8) {
		if len(b) < 2 {
			return
		}
		R, C := 1+int(b[0])%5, 1+int(b[1])%5
		in := make([][]int, R)
		for i := range in {
			in[i] = make([]int, C)
			for j := range in[i] {
				if n := 2 + i*C + j; n < len(b) {
					in[i][j] = int(b[n]) % 12
				}
			}
		}
		k := 2 + int(kb)%8
		v := augment(in)
		s := suppress(v, k)
		for i := range v {
			for j := range v[i] {
				if !s[i][j] && v[i][j] >= 1 && v[i][j] < k {
					t.Fatalf("cell (%d,%d) = %d published with k=%d", i, j, v[i][j], k)
				}
			}
		}
		checkTable(t, "fuzz", v, s)
	})
}
