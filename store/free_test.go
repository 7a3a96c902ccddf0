package store

import "testing"

// TestFreeBytes: deleted submissions' pages count as free, on a reopened
// spool too (the freelist rebuilt by Open), and compaction gives them back.
func TestFreeBytes(t *testing.T) {
	s, dir := openTest(t, nil)
	free0, err := s.FreeBytes()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 20; i++ {
		sub, err := s.PutSubmission(spec(0, "h"), data(ChunkSize))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sub.ID)
	}
	for _, id := range ids[1:] {
		s.Ack(id, "h", nil)
	}
	s.Close()
	*s = *mustOpen(t, dir)
	free, err := s.FreeBytes()
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats()
	// 19 of 20 chunks deleted: most of their bytes are free pages.
	if free < 15*ChunkSize || free > st.FileSize {
		t.Fatalf("free %d bytes of a %d-byte file after deleting 19 chunks of %d (empty spool: %d)", free, st.FileSize, ChunkSize, free0)
	}
	s.Close()
	if _, _, err := Compact(dir); err != nil {
		t.Fatal(err)
	}
	*s = *mustOpen(t, dir)
	if after, _ := s.FreeBytes(); after >= free/10 {
		t.Fatalf("free after compaction %d, before %d", after, free)
	}
}
