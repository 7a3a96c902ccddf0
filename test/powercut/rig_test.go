//go:build linux

package powercut

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// imageSize is the size of the ext4 the tests run on: room for the
// relay's spool, or for the case store and the 64 MiB it keeps free.
const imageSize = 128 << 20

// run runs a command and returns its combined output, with the command in
// the error.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// rig is an ext4 on a loop device whose backing file is a Disk served
// through FUSE, mounted at Mnt.
type rig struct {
	Disk    *Disk
	Mnt     string
	Barrier bool
	loop    string
}

// freshImage makes an empty ext4 image of imageSize in dir and returns its
// bytes. Lazy initialisation is off, so that the kernel writes nothing in
// the background once it is mounted.
func freshImage(t *testing.T, dir string) []byte {
	t.Helper()
	img := filepath.Join(dir, "fresh.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(imageSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := run("mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard", "-L", "powercut", img); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(img)
	return b
}

// newRig serves a fresh ext4 through FUSE, attaches a loop device to it and
// mounts it, with barriers or with nobarrier. Everything is undone when the
// test ends, in reverse order, whether it failed or not.
func newRig(t *testing.T, barrier bool) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{Disk: NewDisk(freshImage(t, dir)), Mnt: filepath.Join(dir, "mnt"), Barrier: barrier}
	fuseDir := filepath.Join(dir, "fuse")
	for _, d := range []string{fuseDir, r.Mnt} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := Serve(r.Disk, fuseDir)
	if err != nil {
		t.Fatal(err)
	}
	undo := onSignal(func() { run("umount", "-l", fuseDir) })
	t.Cleanup(func() {
		undo()
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmounting the FUSE disk: %v", err)
			run("umount", "-l", fuseDir)
		}
	})
	out, err := run("losetup", "--find", "--show", filepath.Join(fuseDir, ImageName))
	if err != nil {
		t.Fatal(err)
	}
	r.loop = strings.TrimSpace(out)
	undoLoop := onSignal(func() { run("losetup", "-d", r.loop) })
	t.Cleanup(func() { undoLoop(); detach(t, r.loop) })
	opt := "barrier"
	if !barrier {
		opt = "nobarrier"
	}
	if _, err := run("mount", "-t", "ext4", "-o", opt, r.loop, r.Mnt); err != nil {
		t.Fatal(err)
	}
	undoMount := onSignal(func() {
		if _, err := run("umount", r.Mnt); err != nil {
			run("umount", "-l", r.Mnt)
		}
	})
	t.Cleanup(func() { undoMount(); unmount(t, r.Mnt) })
	if err := os.Chmod(r.Mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	return r
}

// onSignal registers fn to run if the test binary gets SIGINT or SIGTERM
// (an interrupted run): the processes it started are killed and the
// mounts and loop devices undone, the latest first, before it exits. The function
// returned unregisters fn.
func onSignal(fn func()) (unregister func()) {
	undoMu.Lock()
	defer undoMu.Unlock()
	undoOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		go func() {
			sig := <-ch
			undoMu.Lock()
			for i := len(undoStack) - 1; i >= 0; i-- {
				if undoStack[i] != nil {
					undoStack[i]()
				}
			}
			fmt.Fprintf(os.Stderr, "powercut: %v: its processes killed, mounts and loop devices undone\n", sig)
			os.Exit(2)
		}()
	})
	i := len(undoStack)
	undoStack = append(undoStack, fn)
	return func() {
		undoMu.Lock()
		undoStack[i] = nil
		undoMu.Unlock()
	}
}

var (
	undoMu    sync.Mutex
	undoOnce  sync.Once
	undoStack []func()
)

// unmount unmounts mnt, lazily if it is busy.
func unmount(t *testing.T, mnt string) {
	for i := 0; ; i++ {
		_, err := run("umount", mnt)
		if err == nil {
			return
		}
		if i == 20 {
			t.Errorf("unmounting %s: %v; unmounting lazily", mnt, err)
			run("umount", "-l", mnt)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// detach detaches the loop device dev.
func detach(t *testing.T, dev string) {
	if _, err := run("losetup", "-d", dev); err != nil {
		t.Errorf("detaching %s: %v", dev, err)
	}
}

// copyMount is a cut's image written to a file and mounted on a loop
// device of its own; Close undoes it all.
type copyMount struct {
	img, mnt, loop string
	undo           func()
}

func (c *copyMount) Close(t *testing.T) {
	c.undo()
	if c.mnt != "" {
		unmount(t, c.mnt)
	}
	if c.loop != "" {
		detach(t, c.loop)
	}
	os.Remove(c.img)
}

// openCut writes c's image to dir and checks it: the journal is replayed as
// a mount would (e2fsck -E journal_only), then e2fsck -fn must find
// nothing; then it is mounted, read-write. The error says what e2fsck or
// the mount refused; with it, nothing is left mounted or on disk.
func openCut(t *testing.T, dir string, c *Cut) (*copyMount, error) {
	t.Helper()
	cm, err := mountCut(t, dir, c)
	if err != nil {
		cm.Close(t)
		return nil, err
	}
	return cm, nil
}

func mountCut(t *testing.T, dir string, c *Cut) (*copyMount, error) {
	cm := &copyMount{img: filepath.Join(dir, fmt.Sprintf("cut-%d.img", c.Seed))}
	cm.undo = onSignal(func() {
		if cm.mnt != "" {
			if _, err := run("umount", cm.mnt); err != nil {
				run("umount", "-l", cm.mnt)
			}
		}
		if cm.loop != "" {
			run("losetup", "-d", cm.loop)
		}
	})
	if err := os.WriteFile(cm.img, c.Image, 0o600); err != nil {
		t.Fatal(err)
	}
	// Exit status 1 means the journal was replayed (or something fixed):
	// the full check that follows must then find nothing.
	if out, err := exec.Command("e2fsck", "-y", "-E", "journal_only", cm.img).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			return cm, fmt.Errorf("fsck: e2fsck -E journal_only: %v\n%s", err, out)
		}
	}
	if _, err := run("e2fsck", "-fn", cm.img); err != nil {
		return cm, fmt.Errorf("fsck: %w", err)
	}
	out, err := run("losetup", "--find", "--show", cm.img)
	if err != nil {
		t.Fatal(err)
	}
	cm.loop = strings.TrimSpace(out)
	mnt := filepath.Join(dir, fmt.Sprintf("cut-%d", c.Seed))
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := run("mount", "-t", "ext4", cm.loop, mnt); err != nil {
		return cm, fmt.Errorf("mount: %w", err)
	}
	cm.mnt = mnt
	return cm, nil
}
