//go:build linux

// Power-cut harness.
//
// Each campaign runs on an ext4 that lives on a Disk (disk.go): a FUSE
// file with a volatile write cache, attached to a loop device. ext4 mounted
// with barriers (the default) sends a flush for each fsync and journal
// commit; the loop device turns it into fsync on the FUSE file, and only
// then do the cached writes become durable. Mounted nobarrier, no flush
// reaches the disk: that is the negative control, and it must lose data.
//
// While the workload runs (submissions and acks against a relay whose data
// directory is on the disk, or 'amana pull' into a case store on it), the
// campaign arms a cut at the Nth write since the last flush, so that the
// cut finds writes still cached. The cut is taken in the write handler,
// under the disk's lock, as one instant; at that instant the harness also
// notes what had been acknowledged (receipts received, acks answered, cases
// the relay no longer lists). The cut image keeps the durable blocks plus,
// by kind: none of the cached writes, a random subset, an in-order prefix,
// or a random subset of their 512-byte sectors (torn). Every cut is then
// checked: e2fsck replays the journal and e2fsck -fn must find nothing;
// the copy is mounted; bbolt's check and the spool's invariants
// (store.Spool.Verify) must pass; a relay started on the copy must list
// every acknowledged submission, byte for byte, and none that an answered
// ack deleted. For the case store, every case the relay no longer listed
// at the cut must be complete on the copy.
//
// After the setup (relay init, desk published, first pull) the harness
// drains the cache once, as a disk writes its cache out by itself, so that
// even the nobarrier control starts from a durable data directory and loses
// what came after, not the whole filesystem.
//
// Runs and replays:
//
//	go test ./test/powercut -run Short -count=1 -v     # in make test
//	make powercut                                       # the long run
//	AMANA_POWERCUT_SEED=S go test ./test/powercut -run Short -count=1 -v
//	AMANA_POWERCUT_CUT=S  go test ./test/powercut -run Short/relay/barrier -count=1 -v
//
// Every campaign prints its seed; every cut its own seed (derived from the
// campaign's; its low two bits are its kind). AMANA_POWERCUT_SEED replays
// a campaign's cut decisions (at which write, which kind, what it keeps);
// AMANA_POWERCUT_CUT runs campaigns of that one cut (pick the campaign
// with -run: a control of one cut may find nothing acknowledged to lose). The workload's timing is not replayed, so the
// same seed cuts at the same write count, not the same bytes: set
// AMANA_POWERCUT_KEEP=DIR to keep the image of every failing cut, which
// replays it exactly (mount it, or run e2fsck on it). AMANA_POWERCUT_CUTS
// multiplies the number of cuts (make powercut sets it).
//
// The tests need root, /dev/fuse, losetup, mkfs.ext4 and e2fsck. Without
// them they skip, loudly, unless CI is set, when they fail.
package powercut

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/store"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

var bin string // directory with the built amana and amana-relay

// verifyEnv, when set, makes the test binary a helper that checks the
// spool in that directory and exits: bbolt panics on some damaged files,
// and a panic in the harness itself would leave its mounts behind.
const verifyEnv = "AMANA_POWERCUT_VERIFY_SPOOL"

func TestMain(m *testing.M) {
	if dir := os.Getenv(verifyEnv); dir != "" {
		sp, err := store.Open(dir, &store.Options{LockTimeout: 5 * time.Second})
		if err == nil {
			_, err = sp.Verify()
			if cerr := sp.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if missing := missingTools(); missing != "" {
		// The tests report it; nothing to build.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "amana-powercut-bin")
	if err != nil {
		panic(err)
	}
	if err := relayproc.Build(context.Background(), dir, "./cmd/amana", "./cmd/amana-relay"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// verifySpool runs store.Open and Spool.Verify on the spool in dir, in a
// process of its own.
func verifySpool(dir string) error {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), verifyEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("the spool check (store.Open, Spool.Verify): %v\n%s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// missingTools names what the harness needs and this machine lacks.
func missingTools() string {
	var miss []string
	if os.Geteuid() != 0 {
		miss = append(miss, "root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		miss = append(miss, "/dev/fuse")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		miss = append(miss, "/dev/loop-control")
	}
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "losetup", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			miss = append(miss, tool)
		}
	}
	if len(miss) == 0 {
		return ""
	}
	return fmt.Sprint(miss)
}

// needTools skips the test, loudly, when the machine cannot run it, unless
// CI is set, when it fails.
func needTools(t *testing.T) {
	t.Helper()
	if missing := missingTools(); missing != "" {
		msg := fmt.Sprintf("POWER-CUT TESTS NOT RUN: this machine lacks %s (they need root, FUSE, loop devices and e2fsprogs)", missing)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		fmt.Fprintln(os.Stderr, "\n*** "+msg+" ***")
		t.Skip(msg)
	}
}

// plan is how many cuts each campaign takes.
type plan struct {
	relayCuts, relayControl int
	pullCuts, pullControl   int
}

func scaled(t *testing.T, p plan) plan {
	s := os.Getenv("AMANA_POWERCUT_CUTS")
	if s == "" {
		return p
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("AMANA_POWERCUT_CUTS=%q: want a positive factor", s)
	}
	return plan{p.relayCuts * n, p.relayControl * n, p.pullCuts * n, p.pullControl * n}
}

// seeds gives a campaign its seed, and each of its cuts a seed of its own.
type seeds struct {
	campaign uint64
	one      uint64 // AMANA_POWERCUT_CUT: every cut uses this seed
	fixed    bool
}

func newSeeds(t *testing.T, name string) seeds {
	t.Helper()
	var s seeds
	if v := os.Getenv("AMANA_POWERCUT_CUT"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("AMANA_POWERCUT_CUT=%q: want a cut's seed", v)
		}
		s.one, s.fixed = n, true
	}
	if v := os.Getenv("AMANA_POWERCUT_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("AMANA_POWERCUT_SEED=%q: want a campaign's seed", v)
		}
		s.campaign = n
	} else {
		s.campaign = uint64(time.Now().UnixNano()) & (1<<48 - 1)
	}
	line := fmt.Sprintf("powercut: %s: seed %d (replay: AMANA_POWERCUT_SEED=%d)", name, s.campaign, s.campaign)
	t.Log(line)
	fmt.Println(line)
	return s
}

// cut is the seed of the campaign's i-th cut.
func (s seeds) cut(i int) uint64 {
	if s.fixed {
		return s.one
	}
	x := s.campaign + uint64(i+1)*0x9e3779b97f4a7c15
	x ^= x >> 31
	// The low two bits are the cut's kind (decide): the kinds take turns,
	// and a seed alone names its cut's kind.
	return x&(1<<53-1)&^3 | uint64(i)%uint64(numKinds)
}

// keep saves a failing cut's image where AMANA_POWERCUT_KEEP says.
func keep(t *testing.T, c *Cut, why string) {
	dir := os.Getenv("AMANA_POWERCUT_KEEP")
	if dir == "" {
		return
	}
	p := filepath.Join(dir, fmt.Sprintf("cut-%d-%s.img", c.Seed, c.Kind))
	if err := os.WriteFile(p, c.Image, 0o600); err != nil {
		t.Errorf("keeping the cut image: %v", err)
		return
	}
	t.Logf("cut %d (%s): image kept in %s", c.Seed, why, p)
}

// TestShort is the run in make test: a relay campaign and a pull campaign
// with barriers, each with its nobarrier control.
func TestShort(t *testing.T) {
	needTools(t)
	suite(t, scaled(t, plan{relayCuts: 8, relayControl: 4, pullCuts: 8, pullControl: 3}))
}

// TestLong is make powercut's run; it runs only when asked.
func TestLong(t *testing.T) {
	if os.Getenv("AMANA_POWERCUT_LONG") == "" {
		t.Skip("the long power-cut run: make powercut (AMANA_POWERCUT_LONG=1)")
	}
	needTools(t)
	suite(t, scaled(t, plan{relayCuts: 100, relayControl: 20, pullCuts: 50, pullControl: 10}))
}

func suite(t *testing.T, p plan) {
	begin := time.Now()
	var rb, rn, pb, pn result
	t.Run("relay/barrier", func(t *testing.T) { rb = relayCampaign(t, true, p.relayCuts) })
	t.Run("relay/nobarrier", func(t *testing.T) { rn = relayCampaign(t, false, p.relayControl) })
	t.Run("pull/barrier", func(t *testing.T) { pb = pullCampaign(t, true, p.pullCuts) })
	t.Run("pull/nobarrier", func(t *testing.T) { pn = pullCampaign(t, false, p.pullControl) })
	for _, r := range []result{rb, rn, pb, pn} {
		if r.name != "" {
			fmt.Println(r.line())
			t.Log(r.line())
		}
	}
	line := fmt.Sprintf("powercut: total %d cuts in %.0fs", rb.cuts+rn.cuts+pb.cuts+pn.cuts, time.Since(begin).Seconds())
	fmt.Println(line)
	t.Log(line)
}
