package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/base32"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// frontendKey makes an onion service key in tor's file format and returns
// the file's bytes and the service's address.
func frontendKey(t *testing.T) ([]byte, string) {
	seed := make([]byte, 32)
	rand.Read(seed)
	h := sha512.Sum512(seed)
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	file := append([]byte("== ed25519v1-secret: type0 ==\x00\x00\x00"), h[:]...)
	sum := sha3.Sum256(append(append([]byte(".onion checksum"), pub...), 3))
	addr := strings.ToLower(base32.StdEncoding.EncodeToString(append(append(append([]byte{}, pub...), sum[:2]...), 3)))
	return file, addr
}

// TestOnionbalance runs two relays as Onionbalance instances of one
// frontend address, with Debian's onionbalance publishing the frontend on
// the private Tor network. Submitters reach both relays through the one
// address, and a handler pulls from both without duplicates.
func TestOnionbalance(t *testing.T) {
	ob := needTool(t, "onionbalance", "onionbalance")
	t.Parallel() // with the other long browser and onion tests (see doc.go)
	// The Python that runs it, from its first line (#!/usr/bin/python3).
	head, _ := os.ReadFile(ob)
	first, _, _ := strings.Cut(string(head), "\n")
	python, ok := strings.CutPrefix(first, "#!")
	if !ok || strings.ContainsAny(strings.TrimSpace(python), " \t") {
		t.Fatalf("%s does not start with a #! line naming its Python: %q", ob, first)
	}
	python = strings.TrimSpace(python)
	n := torNetwork(t)
	w := keysAndRelay(t)
	torrc, err := n.WriteTorrc(w.path("network.torrc"))
	if err != nil {
		t.Fatal(err)
	}
	key, front := frontendKey(t)
	os.WriteFile(w.path("frontend.key"), key, 0o600)
	frontURL := "http://" + front + ".onion"

	must(t, run(t, nil, nil, "amana-relay", "init", "--data", w.path("data2"), "--admin", w.path("admin.card")))
	relays := []*onionRelay{
		{w: w, torrc: torrc, data: w.path("data"), extra: []string{"--onionbalance-frontend", frontURL}},
		{w: w, torrc: torrc, data: w.path("data2"), extra: []string{"--onionbalance-frontend", frontURL}},
	}
	for _, r := range relays {
		r.start(t)
		defer r.stop()
		if !strings.Contains(r.out.String(), "an Onionbalance instance of "+frontURL) {
			t.Fatalf("relay output:\n%s", r.out.String())
		}
	}
	viaTor := []string{"--tor-launch", "--torrc", torrc}
	for i, r := range relays {
		retry(t, w.home("admin"), "amana", append([]string{"desk", "publish", w.path("pq.json"), "--relay", r.handler, "-i", w.path("admin.key")}, viaTor...)...)
		r.waitLog(t, "the handler onion is published again", 2*time.Minute)
		fmt.Fprintf(os.Stderr, "onionbalance: instance %d is %s\n", i+1, r.intake)
	}

	// onionbalance, with a tor of its own on the network.
	obTor, err := n.StartClient(context.Background(), "onionbalance")
	if err != nil {
		t.Fatal(err)
	}
	defer obTor.Close()
	_, port, _ := strings.Cut(obTor.ControlAddr, ":")
	config := "services:\n- key: " + w.path("frontend.key") + "\n  instances:\n"
	for i, r := range relays {
		config += fmt.Sprintf("  - address: %s\n    name: relay%d\n", strings.TrimPrefix(r.intake, "http://"), i+1)
	}
	os.WriteFile(w.path("onionbalance.yaml"), []byte(config), 0o600)
	obLog := &syncBuffer{}
	// Two of onionbalance's settings do not suit a network of five relays
	// on a loaded machine, so the same program runs with them changed:
	// - its testnet mode fetches instance descriptors every 20 s and calls
	//   an instance offline when its descriptor is more than 20 s old, so it
	//   often publishes one instance only: the threshold becomes 2 minutes
	//   (an hour outside testnets);
	// - it stores each of two replicas on 4 HSDirs and, when a consensus
	//   lists only 4 (one relay's vote came late), loops for ever looking
	//   for a fifth: it stores on 3, which still covers the 3 that clients
	//   fetch from (tor's hsdir_spread_fetch).
	cmd := exec.Command(python, "-c", "import sys, onionbalance.hs_v3.params as p; p.INSTANCE_DESCRIPTOR_TOO_OLD_TESTNET = 120; "+
		"p.HSDIR_SPREAD_STORE = 3; from onionbalance.manager import main; sys.exit(main())",
		"--is-testnet", "-i", "127.0.0.1", "-p", port, "-c", w.path("onionbalance.yaml"), "-v", "info")
	cmd.Stdout, cmd.Stderr = obLog, obLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	start := time.Now()
	deadline := start.Add(4 * time.Minute)
	// Wait for a frontend descriptor that carries both instances'
	// introduction points: an early one may have only the first's.
	published := func() bool {
		l := obLog.String()
		i := strings.Index(l, "from 2 instances")
		return i >= 0 && strings.Contains(l[i:], "Uploading ")
	}
	for !published() {
		if time.Now().After(deadline) {
			t.Fatalf("onionbalance published no descriptor with both instances in 4 minutes:\n%s", obLog.String())
		}
		time.Sleep(time.Second)
	}
	fmt.Fprintf(os.Stderr, "onionbalance: frontend %s published %v after start\n", front, time.Since(start).Round(time.Second))

	// Submissions through the frontend, each from a fresh tor, until both
	// relays have had one: each tor picks an introduction point of either
	// instance at random.
	os.WriteFile(w.path("msg.txt"), []byte("report through the frontend\n"), 0o600)
	sent := 0
	inboxes := func() (a, b int) {
		for i, r := range relays {
			st := must(t, run(t, nil, nil, "amana-relay", "status", "--data", r.data))
			var waiting int
			for _, line := range strings.Split(st.stdout, "\n") {
				if rest, ok := strings.CutPrefix(line, "submissions: "); ok {
					fmt.Sscanf(rest, "%d", &waiting)
				}
			}
			if i == 0 {
				a = waiting
			} else {
				b = waiting
			}
		}
		return a, b
	}
	for {
		home := w.home(fmt.Sprintf("submitter%d", sent))
		retry(t, home, "amana", append([]string{"submit", "--relay", frontURL, "--desk", "pq", "--category", "incident",
			"--message-file", w.path("msg.txt")}, viaTor...)...)
		sent++
		a, b := 0, 0
		for wait := time.Now().Add(10 * time.Second); time.Now().Before(wait); {
			if a, b = inboxes(); a+b == sent {
				break
			}
			time.Sleep(time.Second)
		}
		if a+b != sent {
			t.Fatalf("sent %d, the relays hold %d and %d", sent, a, b)
		}
		if a > 0 && b > 0 {
			fmt.Fprintf(os.Stderr, "onionbalance: %d submission(s) through the frontend: %d on relay 1, %d on relay 2\n", sent, a, b)
			break
		}
		if sent == 16 {
			t.Fatalf("16 submissions through the frontend all reached one relay (%d, %d)", a, b)
		}
	}

	// alice pulls from both relays at once: every submission, once.
	args := []string{"pull", "-i", w.path("alice.key")}
	for _, r := range relays {
		args = append(args, "--relay", r.handler)
	}
	pr := retry(t, w.home("alice"), "amana", append(args, viaTor...)...)
	if !strings.Contains(pr.stderr, fmt.Sprintf("pulled %d new case(s)", sent)) {
		t.Fatalf("alice's pull from both relays: %s", pr.stderr)
	}
	pr = retry(t, w.home("alice"), "amana", append(args, viaTor...)...)
	if !strings.Contains(pr.stderr, "pulled 0 new case(s)") {
		t.Fatalf("alice's second pull: %s", pr.stderr)
	}
	lr := must(t, run(t, w.home("alice"), nil, "amana", "list"))
	if got := strings.Count(lr.stdout, "incident"); got != sent {
		t.Fatalf("alice holds %d incident cases, want %d:\n%s", got, sent, lr.stdout)
	}
}
