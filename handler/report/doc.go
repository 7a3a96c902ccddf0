// Package report computes a desk's figures on the handler's machine, from
// the case journal's states and the case store's metadata: the HTML and
// CSV report for the desk itself, and the aggregate safe to share upward
// (counts and durations by period, category, severity and channel, with
// small-cell and complementary suppression).
//
// It must never put into any output a case ID, a note, a tag, a reply, a
// referral's text or anything else a person typed, and the aggregate must
// never carry a time finer than its period nor a count that a reader could
// recompute once suppressed.
package report
