//go:build linux

package powercut

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// SectorSize is the unit a torn cut keeps or loses.
const SectorSize = 512

// Kind is what a cut keeps of the writes still in the cache.
type Kind int

const (
	KindNone   Kind = iota // none of them
	KindSubset             // a random subset of the writes, each whole
	KindPrefix             // the first k writes, in order
	KindTorn               // a random subset of their 512-byte sectors
	numKinds
)

func (k Kind) String() string {
	return [...]string{"none", "subset", "prefix", "torn"}[k]
}

// write is one write the disk holds in its cache.
type write struct {
	off  int64
	data []byte
}

// Cut is what the disk held at one instant: Image is the whole disk.
type Cut struct {
	Seed    uint64
	Kind    Kind
	Pending int // writes in the cache at the cut
	Kept    int // of them, kept whole or in part
	Image   []byte
	Tag     any // what the cut hook returned, taken at the same instant
}

// Disk is one file, the image of a disk with a volatile write cache: a
// write goes to the cache and is seen by reads at once, but only a flush
// (fsync or fdatasync on the file, which a loop device sends for the
// filesystem's barriers) makes the cached writes durable. One mutex orders
// writes, flushes and cuts, so a cut is one instant.
type Disk struct {
	mu      sync.Mutex
	cur     []byte  // what reads see
	durable []byte  // what survives a cut whatever it keeps
	pending []write // the cache, in the order written

	writes, flushes int
	maxPending      int

	// Armed cut: taken at the first write that finds the cache holding
	// at least cutAt writes, once the disk has seen cutWrites writes.
	cutAt     int
	cutWrites int
	cutSeed   uint64
	cutKind   Kind
	hook      func() any
	cutDone   chan *Cut
}

// NewDisk makes a disk whose durable content is image.
func NewDisk(image []byte) *Disk {
	return &Disk{cur: append([]byte(nil), image...), durable: append([]byte(nil), image...)}
}

// Stats are the writes and flushes the disk has seen, and the most writes
// its cache held at once.
func (d *Disk) Stats() (writes, flushes, maxPending int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes, d.flushes, d.maxPending
}

// Drain makes every cached write durable, as a disk does when it writes its
// cache out by itself.
func (d *Disk) Drain() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flushLocked()
}

func (d *Disk) flushLocked() {
	for _, w := range d.pending {
		copy(d.durable[w.off:], w.data)
	}
	d.pending = nil
}

// Arm asks for a cut of kind at the write that brings the cache to n
// writes (n ≥ 1), once skip more writes have come, with seed choosing
// what it keeps. hook runs at the cut's
// instant, under the disk's lock; what it returns is the cut's Tag. It
// must not touch the disk. The cut arrives on the channel returned.
func (d *Disk) Arm(n, skip int, kind Kind, seed uint64, hook func() any) <-chan *Cut {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cutDone != nil {
		panic("powercut: a cut is already armed")
	}
	ch := make(chan *Cut, 1)
	d.cutAt, d.cutWrites, d.cutKind, d.cutSeed, d.hook, d.cutDone = max(n, 1), d.writes+skip, kind, seed, hook, ch
	return ch
}

// Disarm cancels an armed cut that has not been taken; it reports whether
// one was armed.
func (d *Disk) Disarm() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	was := d.cutDone != nil
	d.cutDone, d.hook = nil, nil
	return was
}

// CutNow takes a cut of kind at once, whatever the cache holds.
func (d *Disk) CutNow(kind Kind, seed uint64, hook func() any) *Cut {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cutLocked(kind, seed, hook)
}

// cutLocked writes what the disk holds: the durable blocks plus what kind
// keeps of the cache, chosen by seed.
func (d *Disk) cutLocked(kind Kind, seed uint64, hook func() any) *Cut {
	c := &Cut{Seed: seed, Kind: kind, Pending: len(d.pending), Image: append([]byte(nil), d.durable...)}
	if hook != nil {
		c.Tag = hook()
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	switch kind {
	case KindNone:
	case KindSubset:
		for _, w := range d.pending {
			if rng.IntN(2) == 0 {
				copy(c.Image[w.off:], w.data)
				c.Kept++
			}
		}
	case KindPrefix:
		k := rng.IntN(len(d.pending) + 1)
		for _, w := range d.pending[:k] {
			copy(c.Image[w.off:], w.data)
		}
		c.Kept = k
	case KindTorn:
		// Sectors are written whole or not at all; any of them, in any
		// order, may have reached the medium.
		for _, w := range d.pending {
			kept := false
			for s := int64(0); s < int64(len(w.data)); s += SectorSize {
				if rng.IntN(2) == 0 {
					e := min(s+SectorSize, int64(len(w.data)))
					copy(c.Image[w.off+s:], w.data[s:e])
					kept = true
				}
			}
			if kept {
				c.Kept++
			}
		}
	}
	return c
}

func (d *Disk) read(dest []byte, off int64) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off >= int64(len(d.cur)) {
		return 0
	}
	return copy(dest, d.cur[off:])
}

func (d *Disk) write(data []byte, off int64) (int, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off < 0 || off+int64(len(data)) > int64(len(d.cur)) {
		return 0, syscall.ENOSPC
	}
	copy(d.cur[off:], data)
	d.pending = append(d.pending, write{off, append([]byte(nil), data...)})
	d.writes++
	d.maxPending = max(d.maxPending, len(d.pending))
	if d.cutDone != nil && len(d.pending) >= d.cutAt && d.writes >= d.cutWrites {
		c := d.cutLocked(d.cutKind, d.cutSeed, d.hook)
		d.cutDone <- c
		d.cutDone, d.hook = nil, nil
	}
	return len(data), 0
}

func (d *Disk) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flushes++
	d.flushLocked()
}

// ImageName is the one file the FUSE mount serves.
const ImageName = "disk.img"

type root struct {
	fs.Inode
	d *Disk
}

type file struct {
	fs.Inode
	d *Disk
}

var (
	_ = (fs.NodeOnAdder)((*root)(nil))
	_ = (fs.NodeOpener)((*file)(nil))
	_ = (fs.NodeReader)((*file)(nil))
	_ = (fs.NodeWriter)((*file)(nil))
	_ = (fs.NodeFsyncer)((*file)(nil))
	_ = (fs.NodeGetattrer)((*file)(nil))
	_ = (fs.NodeSetattrer)((*file)(nil))
)

func (r *root) OnAdd(ctx context.Context) {
	ch := r.NewPersistentInode(ctx, &file{d: r.d}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: 2})
	r.AddChild(ImageName, ch, false)
}

func (f *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	// Direct I/O: no page cache in front of the disk, so every write the
	// loop device makes reaches the cache here, in its order.
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (f *file) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n := f.d.read(dest, off)
	return fuse.ReadResultData(dest[:n]), 0
}

func (f *file) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	n, errno := f.d.write(data, off)
	return uint32(n), errno
}

func (f *file) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	f.d.flush()
	return 0
}

func (f *file) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f.d.mu.Lock()
	out.Size = uint64(len(f.d.cur))
	f.d.mu.Unlock()
	out.Mode = syscall.S_IFREG | 0o600
	out.Blksize = 4096
	out.Blocks = (out.Size + 511) / 512
	return 0
}

// Setattr keeps the size: a disk does not grow or shrink.
func (f *file) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok && sz != uint64(len(f.d.cur)) {
		return syscall.EPERM
	}
	return f.Getattr(ctx, fh, out)
}

// Serve mounts d on dir (an empty directory) with FUSE, calling mount(2)
// directly (root only). The image is dir/ImageName. Unmount the server
// when done, after every user of the image has let go of it.
func Serve(d *Disk, dir string) (*fuse.Server, error) {
	srv, err := fs.Mount(dir, &root{d: d}, &fs.Options{MountOptions: fuse.MountOptions{
		DirectMount: true, DirectMountStrict: true, FsName: "amana-powercut", Name: "powercut", MaxWrite: 1 << 20,
	}})
	if err != nil {
		return nil, fmt.Errorf("mounting the power-cut disk with FUSE: %w", err)
	}
	return srv, nil
}
