//go:build linux

package powercut

import (
	"bytes"
	"testing"
)

// TestDiskCuts checks what each kind of cut keeps, on a disk served to
// nobody: only flushed writes are durable, and the cached ones are kept
// none, whole in a subset, as an in-order prefix, or by 512-byte sector.
func TestDiskCuts(t *testing.T) {
	const size = 8 * SectorSize
	fill := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	newDisk := func() *Disk {
		d := NewDisk(make([]byte, size))
		d.write(fill(1, SectorSize), 0) // flushed below: durable
		d.flush()
		// Cached: three writes, the last over the first.
		d.write(fill(2, 2*SectorSize), 2*SectorSize)
		d.write(fill(3, 2*SectorSize), 4*SectorSize)
		d.write(fill(4, SectorSize), 2*SectorSize)
		return d
	}
	if d := newDisk(); !bytes.Equal(d.cur[2*SectorSize:3*SectorSize], fill(4, SectorSize)) {
		t.Fatal("reads do not see the cached writes")
	}
	for seed := range uint64(40) {
		for kind := range numKinds {
			d := newDisk()
			c := d.CutNow(kind, seed, func() any { return "tag" })
			if c.Tag != "tag" || c.Pending != 3 {
				t.Fatalf("%v: tag %v, pending %d", kind, c.Tag, c.Pending)
			}
			if !bytes.Equal(c.Image[:SectorSize], fill(1, SectorSize)) {
				t.Errorf("%v seed %d: the flushed write is not in the cut", kind, seed)
			}
			if !bytes.Equal(c.Image[6*SectorSize:], fill(0, 2*SectorSize)) {
				t.Errorf("%v seed %d: blocks nobody wrote changed", kind, seed)
			}
			// What each sector may hold: its durable content or one of
			// the cached writes to it.
			sector := func(i int) byte { return c.Image[i*SectorSize] }
			for i := range 8 {
				if !bytes.Equal(c.Image[i*SectorSize:(i+1)*SectorSize], fill(sector(i), SectorSize)) {
					t.Errorf("%v seed %d: sector %d is torn within itself", kind, seed, i)
				}
			}
			s2, s3, s4, s5 := sector(2), sector(3), sector(4), sector(5)
			switch kind {
			case KindNone:
				if s2|s3|s4|s5 != 0 || c.Kept != 0 {
					t.Errorf("none seed %d kept cached writes", seed)
				}
			case KindSubset:
				// Whole writes: sectors 3, 4 and 5 each go with their write.
				if s4 != s5 || (s3 != 0 && s3 != 2) {
					t.Errorf("subset seed %d split a write: %d %d %d %d", seed, s2, s3, s4, s5)
				}
			case KindPrefix:
				// In order: a later write only with every earlier one.
				ok := (c.Kept == 0 && s2|s3|s4 == 0) || (c.Kept == 1 && s2 == 2 && s3 == 2 && s4 == 0) ||
					(c.Kept == 2 && s2 == 2 && s3 == 2 && s4 == 3 && s5 == 3) || (c.Kept == 3 && s2 == 4 && s3 == 2 && s4 == 3 && s5 == 3)
				if !ok {
					t.Errorf("prefix seed %d (kept %d) is not a prefix: %d %d %d %d", seed, c.Kept, s2, s3, s4, s5)
				}
			}
			// The disk itself is unchanged by a cut.
			if !bytes.Equal(d.cur[2*SectorSize:3*SectorSize], fill(4, SectorSize)) || len(d.pending) != 3 {
				t.Errorf("%v seed %d: the cut changed the disk", kind, seed)
			}
		}
	}
	// Over the seeds, torn cuts split a write between its sectors, and
	// subsets and prefixes keep something and drop something.
	split := false
	for seed := range uint64(40) {
		c := newDisk().CutNow(KindTorn, seed, nil)
		if c.Image[4*SectorSize] != c.Image[5*SectorSize] {
			split = true
		}
	}
	if !split {
		t.Error("no torn cut split a write between its sectors")
	}

	// Arm: the cut is taken at the write that finds the cache full enough.
	d := NewDisk(make([]byte, size))
	ch := d.Arm(2, 1, KindNone, 7, nil)
	d.write(fill(5, SectorSize), 0)
	d.flush()
	d.write(fill(5, SectorSize), 0)
	select {
	case <-ch:
		t.Fatal("cut taken with one write in the cache")
	default:
	}
	d.write(fill(6, SectorSize), SectorSize)
	c := <-ch
	if c.Pending != 2 || c.Seed != 7 || c.Image[0] != 5 || c.Image[SectorSize] != 0 {
		t.Errorf("armed cut: pending %d seed %d image %d %d", c.Pending, c.Seed, c.Image[0], c.Image[SectorSize])
	}
	if d.Disarm() {
		t.Error("a taken cut is still armed")
	}
	d.Drain()
	if c := d.CutNow(KindNone, 1, nil); c.Image[SectorSize] != 6 {
		t.Error("Drain did not make the cache durable")
	}
}
