package report

// Suppression of a two-way table published with its margins.
//
// The table is augmented: rows 0..R-1 are categories and row R holds the
// column totals; columns 0..C-1 are the (severity, channel) pairs and
// column C holds the row totals; (R, C) is the grand total. Published
// values are constants a reader knows; the suppressed ones are unknowns
// tied by the R+1 row equations and C+1 column equations (each interior
// row sums to its total, each interior column to its total, the totals to
// the grand total).
//
// Negate the margins (keeping the grand total's sign): every row and every
// column of the augmented table then sums to zero. In that form the
// unknowns are the edges of a bipartite graph (row nodes, column nodes,
// one edge per suppressed cell), and the solutions of the equations differ
// from the true table by an element of the graph's cycle space. So a
// suppressed cell is determined exactly when its edge is a bridge (on no
// cycle). When it is on a cycle, adding +t and -t alternately around the
// cycle keeps every equation; every suppressed cell holds at least 1 (zeros
// are published, never suppressed), so any |t| <= 1 keeps every count
// non-negative, and the cell's feasible interval is at least 2 wide.
//
// The algorithm:
//  1. primary: every cell, margin or grand total with 1 <= count < k;
//  2. complementary: while some suppressed cell is a bridge, put it on a
//     4-cycle (its row, another row, its column, another column) whose
//     other three cells are suppressed already or hold at least 1,
//     choosing the cycle that suppresses the least total count (ties: the
//     first in row, then column order). Such a cycle always exists for a
//     cell >= 1 (through its row's and column's totals and the grand
//     total), and adding cells never turns a non-bridge into a bridge, so
//     it ends after at most one step per cell.

// suppress returns which cells of the augmented table v (size (R+1)x(C+1),
// margins included, as described above) are suppressed for threshold k.
func suppress(v [][]int, k int) [][]bool {
	rows := len(v)
	if rows == 0 {
		return nil
	}
	cols := len(v[0])
	s := make([][]bool, rows)
	for i := range v {
		s[i] = make([]bool, cols)
		for j, x := range v[i] {
			s[i][j] = x >= 1 && x < k
		}
	}
	for {
		a, b, ok := firstBridge(s)
		if !ok {
			return s
		}
		best, br, bc := -1, -1, -1
		for r := 0; r < rows; r++ {
			if r == a {
				continue
			}
			for c := 0; c < cols; c++ {
				if c == b {
					continue
				}
				cost, fit := 0, true
				for _, p := range [3][2]int{{a, c}, {r, c}, {r, b}} {
					switch {
					case s[p[0]][p[1]]:
					case v[p[0]][p[1]] >= 1:
						cost += v[p[0]][p[1]]
					default:
						fit = false
					}
				}
				if fit && (best < 0 || cost < best) {
					best, br, bc = cost, r, c
				}
			}
		}
		if best < 0 {
			// Unreachable for a consistent table (see above): should the
			// margins not add up, publish no count at all rather than
			// one that might be recomputed.
			for i := range s {
				for j := range s[i] {
					s[i][j] = v[i][j] >= 1
				}
			}
			return s
		}
		s[a][bc], s[br][bc], s[br][b] = true, true, true
	}
}

// firstBridge finds a suppressed cell whose edge is on no cycle of the
// suppressed cells' bipartite graph.
func firstBridge(s [][]bool) (int, int, bool) {
	for i := range s {
		for j := range s[i] {
			if s[i][j] && !connectedWithout(s, i, j) {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}

// connectedWithout reports whether row a reaches column b through
// suppressed cells other than (a, b).
func connectedWithout(s [][]bool, a, b int) bool {
	rows, cols := len(s), len(s[0])
	seenR := make([]bool, rows)
	seenC := make([]bool, cols)
	type node struct {
		row bool
		i   int
	}
	queue := []node{{true, a}}
	seenR[a] = true
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n.row {
			for j := 0; j < cols; j++ {
				if !s[n.i][j] || seenC[j] || (n.i == a && j == b) {
					continue
				}
				if j == b {
					return true
				}
				seenC[j] = true
				queue = append(queue, node{false, j})
			}
			continue
		}
		for i := 0; i < rows; i++ {
			if !s[i][n.i] || seenR[i] || (i == a && n.i == b) {
				continue
			}
			seenR[i] = true
			queue = append(queue, node{true, i})
		}
	}
	return false
}
