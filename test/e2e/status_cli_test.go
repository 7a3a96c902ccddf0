package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// complaintsDesk creates and publishes, on w's relay, a desk from the
// feedback and complaints pack: alice and carol handle the general
// categories, carol alone the sensitive ones, and carol coordinates.
func complaintsDesk(t *testing.T, w *world) {
	t.Helper()
	args := []string{"desk", "create", "--id", "complaints", "--template", "humanitarian-complaints",
		"--handler", w.path("alice.card"), "--handler", w.path("carol.card"),
		"--coordinator", "carol", "--notify", "focal-points=alice", "--serial", "1",
		"-i", w.path("admin.key"), "-o", w.path("complaints.json")}
	for _, c := range []string{"fraud-corruption", "abuse-of-authority", "sexual-exploitation-abuse", "threat-to-safety"} {
		args = append(args, "--category", c+"=carol")
	}
	must(t, run(t, nil, nil, "amana", args...))
	must(t, run(t, nil, nil, "amana", "desk", "publish", w.path("complaints.json"), "--relay", w.relay, "-i", w.path("admin.key")))
}

// submitWords submits msg to the complaints desk in category as the
// submitter, keeps the receipt's words in receiptFile and returns the
// case's ID.
func submitWords(t *testing.T, w *world, category, msg, receiptFile string) string {
	t.Helper()
	os.WriteFile(w.path("msg.txt"), []byte(msg), 0o600)
	r := must(t, run(t, w.home("submitter"), nil, "amana", "submit", "--relay", w.relay, "--desk", "complaints", "--category", category, "--message-file", w.path("msg.txt")))
	m := wordsRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no receipt words:\n%s", r.stdout)
	}
	os.WriteFile(w.path(receiptFile), []byte(m[1]+"\n"), 0o600)
	return receiptID.FindStringSubmatch(r.stdout)[1]
}

// TestStatusCLI runs the submitter's status and survey with real binaries
// on a loopback relay: closing a case queues a sealed status message, sync
// sends it, 'amana check' shows it as the status and offers the survey,
// 'amana followup --satisfaction 4' answers it, pull records the score on
// the case, show and case show display it, and the report counts it;
// neither the survey comment nor a note appears in any report or
// aggregate. A reopening without a
// status message, then 'case notify', tells the submitter the new status
// and takes the survey back.
func TestStatusCLI(t *testing.T) {
	w := setup(t)
	complaintsDesk(t, w)
	id := submitWords(t, w, "complaint-major", "The water point in block 4 has been closed for a week.\n", "receipt.txt")
	alice := func(args ...string) result {
		t.Helper()
		return must(t, run(t, w.home("alice"), nil, "amana", append(args, "-i", w.path("alice.key"))...))
	}
	check := func() string {
		t.Helper()
		return must(t, run(t, w.home("submitter"), nil, "amana", "check", "--relay", w.relay, "--receipt-file", w.path("receipt.txt"))).stdout
	}
	alice("pull", "--relay", w.relay)

	// Closing queues the status message, sealed: its text is nowhere on
	// disk, and the queue's files are the handler's alone.
	const closedText = "Your case is closed. Thank you for telling us."
	const noteMarker = "MARKER-note-4b7a0c"
	os.WriteFile(w.path("note.txt"), []byte("Told the water committee. "+noteMarker+"\n"), 0o600)
	r := alice("case", "close", id[:12], "--reason", "answered", "--message-file", w.path("note.txt"))
	if !strings.Contains(r.stderr, `a status message telling the submitter "closed", asking how satisfied they are, is queued, encrypted; 'amana sync' sends it`) {
		t.Fatalf("case close:\n%s", r.stderr)
	}
	queue := filepath.Join(w.path("home-alice"), "cases", "journal", "status-outbox")
	ents, _ := os.ReadDir(queue)
	if len(ents) != 1 {
		t.Fatalf("status queue holds %d files, want 1", len(ents))
	}
	if fi, _ := os.Stat(filepath.Join(queue, ents[0].Name())); fi.Mode().Perm() != 0o600 {
		t.Errorf("queued status message has mode %o", fi.Mode().Perm())
	}
	assertNotInDir(t, filepath.Join(w.path("home-alice"), "cases"), closedText)
	if out := check(); strings.Contains(out, "Status:") {
		t.Fatalf("check shows a status before it was sent:\n%s", out)
	}

	// sync sends it; the submitter sees it as the status, with the survey.
	r = alice("sync", "--relay", w.relay)
	if !strings.Contains(r.stderr, "sent 1 status message(s)") {
		t.Fatalf("sync:\n%s", r.stderr)
	}
	if ents, _ := os.ReadDir(queue); len(ents) != 0 {
		t.Errorf("the queue keeps %d status message(s) after they were sent", len(ents))
	}
	assertNotInDir(t, w.path("data"), closedText)
	out := check()
	if !strings.Contains(out, "Status: "+closedText) || !strings.Contains(out, "(from alice of desk complaints, signature verified") ||
		!strings.Contains(out, "amana followup --satisfaction N") {
		t.Fatalf("check after sync:\n%s", out)
	}
	// A second sync sends nothing again.
	if r = alice("sync", "--relay", w.relay); strings.Contains(r.stderr, "status message") {
		t.Errorf("a second sync: %s", r.stderr)
	}

	// The survey answer, with a comment that must stay out of every report.
	const marker = "MARKER-survey-c0mment-91d2"
	os.WriteFile(w.path("comment.txt"), []byte("Fixed quickly, thanks. "+marker+"\n"), 0o600)
	r = must(t, run(t, w.home("submitter"), nil, "amana", "followup", "--relay", w.relay, "--receipt-file", w.path("receipt.txt"),
		"--satisfaction", "4", "--comment-file", w.path("comment.txt")))
	if !strings.Contains(r.stderr, "your answer was sent: encrypted on this machine to 2 handler(s)") {
		t.Fatalf("followup --satisfaction:\n%s", r.stderr)
	}
	assertNotInDir(t, w.path("data"), marker)
	r = alice("pull", "--relay", w.relay)
	if !strings.Contains(r.stderr, "case "+id[:12]+": the submitter answered the survey: 4/5") {
		t.Fatalf("pull of the survey answer:\n%s", r.stderr)
	}
	r = alice("case", "show", id[:12])
	for _, want := range []string{"satisfaction: 4/5", "comment:      Fixed quickly, thanks. " + marker, "recorded the submitter's satisfaction: 4/5"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("case show lacks %q:\n%s", want, r.stdout)
		}
	}
	r = alice("show", id[:12])
	for _, want := range []string{"status message (status closed, asking how satisfied they are): " + closedText, "satisfaction: 4/5", marker} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	// carol, the coordinator and a handler of the category, has the score
	// too, from alice's event.
	must(t, run(t, w.home("carol"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("carol.key")))
	if r := must(t, run(t, w.home("carol"), nil, "amana", "case", "show", id[:12], "-i", w.path("carol.key"))); !strings.Contains(r.stdout, "satisfaction: 4/5") {
		t.Errorf("carol's case show:\n%s", r.stdout)
	}

	// The report counts it; no report or aggregate carries the comment.
	today := time.Now().UTC().Format("2006-01-02")
	alice("report", "--from", today, "--to", today, "--html", w.path("r.html"), "--csv", w.path("r.csv"))
	alice("report", "--aggregate", "--k", "2", "--from", today, "--to", today, "--csv", w.path("agg.csv"), "--json", w.path("agg.json"))
	csv, _ := os.ReadFile(w.path("r.csv"))
	for _, want := range []string{"satisfaction,responses,1\n", "satisfaction,score_4,1\n", "satisfaction,mean,4.00\n", "channel,cli,1\n", "close_reason,answered,1\n"} {
		if !strings.Contains(string(csv), want) {
			t.Errorf("report CSV lacks %q:\n%s", want, csv)
		}
	}
	if html, _ := os.ReadFile(w.path("r.html")); !strings.Contains(string(html), "4.00") {
		t.Errorf("the HTML report does not show the mean score")
	}
	for _, f := range []string{"r.html", "r.csv", "agg.csv", "agg.json"} {
		if b, _ := os.ReadFile(w.path(f)); len(b) == 0 || strings.Contains(string(b), marker) || strings.Contains(string(b), noteMarker) || strings.Contains(string(b), id) {
			t.Errorf("%s is empty, or carries the survey comment, the note or the case ID", f)
		}
	}

	// Reopened without a status message: nothing queued; 'case notify'
	// then tells the submitter the case's status, which asks no survey.
	r = alice("case", "reopen", id[:12], "--no-status-message")
	if strings.Contains(r.stderr, "status message") {
		t.Fatalf("reopen --no-status-message:\n%s", r.stderr)
	}
	if ents, _ := os.ReadDir(queue); len(ents) != 0 {
		t.Fatalf("--no-status-message queued %d message(s)", len(ents))
	}
	r = alice("case", "notify", id[:12])
	if !strings.Contains(r.stderr, `a status message telling the submitter "acknowledged" is queued, encrypted; 'amana sync' sends it`) {
		t.Fatalf("case notify:\n%s", r.stderr)
	}
	alice("sync", "--relay", w.relay)
	out = check()
	if !strings.Contains(out, "Status: We have received your feedback and will look into it.") || strings.Contains(out, "Status: "+closedText) ||
		strings.Contains(out, "--satisfaction") {
		t.Fatalf("check after the reopening:\n%s", out)
	}
	r = run(t, w.home("submitter"), nil, "amana", "followup", "--relay", w.relay, "--receipt-file", w.path("receipt.txt"), "--satisfaction", "5")
	if r.code != 2 || !strings.Contains(r.stderr, "amana: the desk has not asked how satisfied you are") || !strings.Contains(r.stderr, "hint: ") {
		t.Fatalf("a survey answer the desk did not ask for: exit %d\n%s", r.code, r.stderr)
	}
	// A status the desk has no text for sends nothing, and notify says so.
	if r = alice("case", "set", id[:12], "--status", "in-progress"); strings.Contains(r.stderr, "status message") {
		t.Errorf("set --status in-progress:\n%s", r.stderr)
	}
	r = run(t, w.home("alice"), nil, "amana", "case", "notify", id[:12], "-i", w.path("alice.key"))
	if r.code != 2 || !strings.Contains(r.stderr, `the desk tells the submitter nothing of status "in-progress"`) {
		t.Errorf("notify of a status without text: exit %d\n%s", r.code, r.stderr)
	}
}

// TestSensitiveCategoryRestricted: a report in a sensitive category of the
// complaints pack reaches only the restricted team. The general team's
// handler is never offered it, and cannot decrypt its ciphertext even
// when holding a copy; the restricted handler opens it.
func TestSensitiveCategoryRestricted(t *testing.T) {
	w := setup(t)
	complaintsDesk(t, w)
	const marker = "MARKER-sensitive-5e1f"
	id := submitWords(t, w, "sexual-exploitation-abuse", "A distribution agent asked for favours. "+marker+"\n", "receipt.txt")
	r := must(t, run(t, w.home("alice"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("alice.key")))
	if !strings.Contains(r.stderr, "pulled 0 new case") {
		t.Fatalf("alice, of the general team, pulled:\n%s", r.stderr)
	}
	r = must(t, run(t, w.home("carol"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("carol.key")))
	if !strings.Contains(r.stderr, "pulled 1 new case") {
		t.Fatalf("carol, of the restricted team:\n%s", r.stderr)
	}
	if r := must(t, run(t, w.home("carol"), nil, "amana", "show", id[:12], "-i", w.path("carol.key"))); !strings.Contains(r.stdout, marker) {
		t.Fatalf("carol's show:\n%s", r.stdout)
	}
	// alice with carol's ciphertext: age refuses, and so does amana.
	bundle := filepath.Join(w.path("home-carol"), "cases", id, "submission.age")
	out, err := exec.Command(filepath.Join(bin, "age"), "-d", "-i", w.path("alice.key"), bundle).CombinedOutput()
	if err == nil || strings.Contains(string(out), marker) {
		t.Fatalf("alice's key opens the sensitive case:\n%s", out)
	}
	if r := run(t, w.home("alice"), nil, "amana", "show", id[:12], "-i", w.path("alice.key")); r.code == 0 || strings.Contains(r.stdout, marker) {
		t.Fatalf("alice's show of the sensitive case: exit %d\n%s", r.code, r.stdout)
	}
	assertNotInDir(t, w.path("home-alice"), marker)
	assertNotInDir(t, w.path("data"), marker)
}
