package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/web"
	"github.com/amana-relay/amana/store"
)

// post sends a multipart form with fields in order and files.
func (f *fixture) post(path string, fields [][2]string, files map[string][]byte, want int) (*http.Response, string) {
	f.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, kv := range fields {
		mw.WriteField(kv[0], kv[1])
	}
	for name, data := range files {
		part, _ := mw.CreateFormFile("files", name)
		part.Write(data)
	}
	mw.Close()
	r, _ := http.NewRequest("POST", f.ts.URL+path, &b)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	resp := f.req(r, want)
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (f *fixture) page(path string, want int) (*http.Response, string) {
	f.t.Helper()
	resp := f.do("GET", path, nil, nil, want)
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// only returns the one submission stored, decrypted with id.
func (f *fixture) only(id *crypto.Identity) (*crypto.Report, map[string][]byte) {
	f.t.Helper()
	subs, err := f.spool.Submissions(nil)
	if err != nil || len(subs) != 1 {
		f.t.Fatalf("%d submissions stored, want 1 (%v)", len(subs), err)
	}
	rd, _ := f.spool.OpenSubmission(subs[0].ID, 0)
	br, err := crypto.OpenBundle(rd, id.Age())
	if err != nil {
		f.t.Fatal(err)
	}
	files := map[string][]byte{}
	for {
		a, r, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.t.Fatal(err)
		}
		files[a.Name], _ = io.ReadAll(r)
	}
	return br.Report(), files
}

func TestPagesHeadersAndLanguages(t *testing.T) {
	f := newFixture(t)
	resp, body := f.page("/desks/helpdesk?lang=ar", 200)
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	} {
		if !strings.Contains(resp.Header.Get(k), want) {
			t.Errorf("%s: %q", k, resp.Header.Get(k))
		}
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Error("a submitter page sets a cookie")
	}
	for _, want := range []string{`<html lang="ar" dir="rtl">`, "ماذا حدث؟", `href="/desks/helpdesk?lang=fr"`, `name="f.what"`, `name="category"`,
		`name="files"`, `id="amana-desk"`, "age1", `src="/static/amana.js"`} {
		if !strings.Contains(body, want) {
			t.Errorf("Arabic desk page lacks %q", want)
		}
	}
	for _, bad := range []string{"http://", "https://", "<script>", "style="} {
		if strings.Contains(body, bad) {
			t.Errorf("desk page contains %q: another origin or inline code", bad)
		}
	}
	_, body = f.page("/desks/helpdesk?lang=fr", 200)
	if !strings.Contains(body, "Que s’est-il passé ?") || !strings.Contains(body, `dir="ltr"`) {
		t.Error("French page")
	}
	_, body = f.page("/desks/helpdesk?lang=xx", 200)
	if !strings.Contains(body, `lang="en"`) {
		t.Error("unknown language does not fall back to English")
	}
	r, _ := http.NewRequest("GET", f.ts.URL+"/", nil)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(r)
	if err != nil || resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/desks/helpdesk") {
		t.Errorf("the only desk is not where / leads: %v %v", resp.StatusCode, err)
	}
	f.page("/desks/nosuch", 404)
	_, txt := f.page("/desks/helpdesk/recipients.txt?category=sea", 200)
	if !strings.Contains(txt, f.alice.Recipient()) || strings.Contains(txt, f.bob.Recipient()) {
		t.Errorf("recipients of sea:\n%s", txt)
	}
	f.page("/static/amana.css", 200)
}

func TestNoJavaScriptForm(t *testing.T) {
	f := newFixture(t)
	const marker = "MARKER-5e2b-nojs"
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	photo := bytes.Repeat([]byte{0xff, 0xd8, 1, 2, 3}, 50000)
	_, body := f.post("/desks/helpdesk/submit", [][2]string{{"lang", "ar"}, {"f.what", "ما حدث " + marker}, {"f.when", "أمس"}, {"category", "sea"}, {"f.contact", ""}},
		map[string][]byte{"صورة.jpg": photo}, 200)
	if !strings.Contains(body, "وصل بلاغك") || !strings.Contains(body, "شفّر هذا الخادم") {
		t.Fatalf("receipt page:\n%s", body)
	}
	r, files := f.only(f.alice)
	if r.SealedBy != crypto.SealedByServer || r.Category != "sea" || r.Language != "ar" {
		t.Fatalf("report %+v", r)
	}
	if len(r.Answers) != 2 || r.Answers[0] != (crypto.Answer{Field: "what", Value: "ما حدث " + marker}) {
		t.Fatalf("answers %+v", r.Answers)
	}
	if !bytes.Equal(files["صورة.jpg"], photo) {
		t.Fatal("attachment differs")
	}
	// Nothing of the plaintext is on disk: not in the spool, not in TMPDIR.
	for _, dir := range []string{filepath.Dir(f.spoolPath()), tmp} {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(marker)) {
					t.Errorf("%s holds the plaintext", p)
				}
			}
			return nil
		})
	}
}

func (f *fixture) spoolPath() string {
	return filepath.Join(f.dataDir, store.FileName)
}

func TestNoJavaScriptFormErrors(t *testing.T) {
	f := newFixture(t)
	// A missing required field: the form comes back with what was typed.
	_, body := f.post("/desks/helpdesk/submit", [][2]string{{"lang", "en"}, {"f.when", "yesterday evening"}}, nil, 400)
	if !strings.Contains(body, "Please fill in: “\u2068What happened?\u2069”.") || strings.Contains(body, "?.") || !strings.Contains(body, `value="yesterday evening"`) {
		t.Fatalf("missing field page:\n%s", body)
	}
	// Too large for the desk.
	big := make([]byte, 9<<20)
	_, body = f.post("/desks/helpdesk/submit", [][2]string{{"lang", "en"}, {"f.what", "x"}}, map[string][]byte{"big.bin": big}, 413)
	if !strings.Contains(body, "too large") {
		t.Fatalf("too large:\n%s", body)
	}
	// A post that breaks off mid-part: one event line, naming only the
	// error's type.
	f.mu.Lock()
	f.logs = nil
	f.mu.Unlock()
	broken := "--b\r\nContent-Disposition: form-data; name=\"f.what\"\r\n\r\nMARKER-typed-by-the-submitter"
	req, _ := http.NewRequest("POST", f.ts.URL+"/desks/helpdesk/submit", strings.NewReader(broken))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	f.req(req, 400)
	var lines []string
	f.mu.Lock()
	for _, l := range f.logs {
		if strings.Contains(l, "form submission failed") {
			lines = append(lines, l)
		}
	}
	f.mu.Unlock()
	if len(lines) != 1 || strings.Contains(lines[0], "MARKER") {
		t.Fatalf("a failed post logged %q, want one line without its text", lines)
	}
	if subs, _ := f.spool.Submissions(nil); len(subs) != 0 {
		t.Fatal("a refused form stored something")
	}
}

func TestRequireClientEncryption(t *testing.T) {
	f := newFixture(t)
	f.srv.cfg.RequireClientEncryption = true
	_, page := f.page("/desks/helpdesk", 200)
	if !strings.Contains(page, "accepts only reports encrypted on your own device") {
		t.Error("the page does not say the no-JavaScript path is off")
	}
	_, body := f.post("/desks/helpdesk/submit", [][2]string{{"lang", "en"}, {"f.what", "x"}}, nil, 403)
	if !strings.Contains(body, "encrypted on your own device") {
		t.Fatalf("refusal:\n%s", body)
	}
}

func TestSelfEncryptedUpload(t *testing.T) {
	f := newFixture(t)
	ct := encrypt(t, []byte("a report I encrypted with age"), f.alice)
	send := func(category string, data []byte, want int) string {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("lang", "en")
		mw.WriteField("category", category)
		part, _ := mw.CreateFormFile("age", "report.age")
		part.Write(data)
		mw.Close()
		r, _ := http.NewRequest("POST", f.ts.URL+"/desks/helpdesk/self", &b)
		r.Header.Set("Content-Type", mw.FormDataContentType())
		body, _ := io.ReadAll(f.req(r, want).Body)
		return string(body)
	}
	// Sealed for "sea" (alice alone) but sent as "incident": told so, in
	// the page's language.
	if body := send("incident", ct, 400); !strings.Contains(body, "This file was sealed for another category: “\u2068SEA\u2069”.") {
		t.Fatalf("wrong recipients for the category:\n%s", body)
	}
	// Three recipients fit no route of the desk: not said to be another
	// category's.
	three := encrypt(t, []byte("for someone else"), f.alice, f.bob, f.outsider)
	if body := send("sea", three, 400); !strings.Contains(body, "not an age-encrypted file for this desk") || strings.Contains(body, "another category") {
		t.Fatalf("a file for no route of the desk:\n%s", body)
	}
	if body := send("sea", []byte("plain text"), 400); !strings.Contains(body, "not an age-encrypted file") {
		t.Fatalf("plain text:\n%s", body)
	}
	body := send("sea", ct, 200)
	sum := sha256.Sum256(ct)
	// The page says what the path does not give; the age version it
	// needs only for a post-quantum desk.
	_, page := f.page("/desks/helpdesk/self?lang=en", 200)
	if !strings.Contains(page, "This path gives you no receipt words, so you cannot read the desk’s replies") || strings.Contains(page, "age 1.3") {
		t.Errorf("the self-encryption page of a classic desk:\n%s", page)
	}
	pq, err := crypto.GenerateIdentity("carol", false)
	if err != nil {
		t.Fatal(err)
	}
	env, err := crypto.SignManifest(&crypto.Manifest{Version: 1, Desk: "pqdesk", Title: "PQ", Serial: 1, Handlers: []string{pq.Card().String()},
		Limits: crypto.Limits{MaxSubmissionBytes: 1 << 20}}, f.admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	f.signed(f.admin, "PUT", "/api/v1/admin/desks/pqdesk", env, 200)
	for lang, wants := range map[string][]string{
		"en": {"you need age 1.3 or newer", "“pq plugin”", "This path gives you no receipt words"},
		"fr": {"il vous faut age 1.3 ou plus récent", "Cette voie ne vous donne pas de mots de reçu"},
		"ar": {"تحتاج إلى age بالإصدار 1.3 أو أحدث", "لا يعطيك هذا الطريق كلمات إيصال"},
	} {
		_, page := f.page("/desks/pqdesk/self?lang="+lang, 200)
		for _, want := range wants {
			if !strings.Contains(page, want) {
				t.Errorf("the %s self-encryption page of a post-quantum desk lacks %q", lang, want)
			}
		}
	}
	if !strings.Contains(body, hex.EncodeToString(sum[:])) {
		t.Fatalf("receipt:\n%s", body)
	}
	subs, _ := f.spool.Submissions(nil)
	if len(subs) != 1 || subs[0].Category != "sea" {
		t.Fatalf("stored %+v", subs)
	}
	// Past what a page post may bring at all: refused at the door, saying
	// how large the file may be.
	f.srv.cfg.MaxFormBytes = 1 << 20
	if body := send("sea", make([]byte, 3<<20), 413); !strings.Contains(body, "This file is too large for this desk: it takes at most 1 MB.") {
		t.Errorf("a file too large at the door:\n%s", body)
	}
	// Past the limit, read.
	if body := send("sea", make([]byte, 1<<20+1), 413); !strings.Contains(body, "it takes at most 1 MB") {
		t.Errorf("a file too large:\n%s", body)
	}
}

func TestCustomForm(t *testing.T) {
	f := newFixture(t)
	m := &crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Complaints", Serial: 5,
		Handlers:   []string{f.alice.Card().String(), f.bob.Card().String()},
		Categories: []crypto.Category{{ID: "fraud", Title: "Fraud", Handlers: []string{"alice"}, Labels: map[string]string{"ar": "احتيال"}}},
		Form: &crypto.Form{Fields: []crypto.Field{
			{ID: "place", Type: crypto.FieldChoice, Required: true, Label: map[string]string{"en": "Where?", "ar": "أين؟"},
				Options: []crypto.Option{{ID: "camp", Label: map[string]string{"en": "In the camp"}}, {ID: "office", Label: map[string]string{"en": "At the office"}}}},
			{ID: "who", Type: crypto.FieldMultiChoice, Label: map[string]string{"en": "Who was involved?"},
				Options: []crypto.Option{{ID: "staff", Label: map[string]string{"en": "Staff"}}, {ID: "guard", Label: map[string]string{"en": "A guard"}}}},
			{ID: "date", Type: crypto.FieldDate, Label: map[string]string{"en": "Date"}},
			{ID: "kind", Type: crypto.FieldCategory, Label: map[string]string{"en": "Kind"}},
		}}}
	env, err := crypto.SignManifest(m, f.admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	f.publish(env, 200)
	_, body := f.page("/desks/helpdesk?lang=ar", 200)
	for _, want := range []string{"أين؟", `type="radio" name="f.place" value="camp"`, `type="checkbox" name="f.who" value="guard"`, `type="date"`, "احتيال", "In the camp"} {
		if !strings.Contains(body, want) {
			t.Errorf("custom form page lacks %q", want)
		}
	}
	if strings.Contains(body, `name="files"`) {
		t.Error("a form without a file field offers attachments")
	}
	f.post("/desks/helpdesk/submit", [][2]string{{"lang", "en"}, {"f.place", "camp"}, {"f.who", "staff"}, {"f.who", "guard"}, {"category", "fraud"}}, nil, 200)
	r, _ := f.only(f.alice)
	want := []crypto.Answer{{Field: "place", Value: "camp"}, {Field: "who", Value: "staff"}, {Field: "who", Value: "guard"}}
	if len(r.Answers) != 3 || r.Answers[0] != want[0] || r.Answers[1] != want[1] || r.Answers[2] != want[2] || r.Category != "fraud" {
		t.Fatalf("answers %+v category %q", r.Answers, r.Category)
	}
}

func FuzzReadForm(f *testing.F) {
	f.Add("b", "--b\r\nContent-Disposition: form-data; name=\"f.what\"\r\n\r\nhello\r\n--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nabc\r\n--b--\r\n")
	f.Add("x", "--x\r\nContent-Disposition: form-data; name=\"lang\"\r\n\r\nar\r\n--x--")
	f.Add("s", "--s\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nsurvey\r\n--s\r\nContent-Disposition: form-data; name=\"satisfaction\"\r\n\r\n4\r\n--s\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nok\r\n--s--\r\n")
	f.Fuzz(func(t *testing.T, boundary, body string) {
		r, _ := http.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		post, err := readForm(r, 1<<16, true)
		if err != nil || post == nil {
			return
		}
		var n int64
		for _, fl := range post.files {
			n += fl.Size
		}
		if n > 1<<16 {
			t.Fatalf("kept %d bytes of files, over the budget", n)
		}
		post.wipe()
	})
}

func TestStaticGzip(t *testing.T) {
	f := newFixture(t)
	r, _ := http.NewRequest("GET", f.ts.URL+"/static/amana.js", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(r)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	// The budget: what a submitter on a slow Tor circuit downloads before
	// the page can seal anything. 72 KiB holds typage, the streamed
	// bundle, the page's SHA-256 and the check page's survey (64,239
	// bytes in December 2026); growing past it needs a reason.
	if resp.Header.Get("Content-Encoding") != "gzip" || len(body) > 72<<10 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("amana.js: %d bytes, %q, %q", len(body), resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Type"))
	}
	t.Logf("amana.js over the wire: %d bytes gzipped", len(body))
	f.page("/static/nothing.js", 404)
}

// TestNoJavaScriptTooLargeKeepsText: a post past a limit shows the form
// again with the text that was received and names the limit, whether the
// relay read the post (past the desk's limit) or cut it at the door (past
// what a form post may bring at all); a file too large is dropped, and
// nothing is stored.
func TestNoJavaScriptTooLargeKeepsText(t *testing.T) {
	f := newFixture(t)
	account := strings.Repeat("a long account of what happened. ", 1000) + "MARKER-end-of-account"
	fields := func(lang string) [][2]string {
		return [][2]string{{"lang", lang}, {"f.what", account}, {"f.when", "yesterday evening"}}
	}
	kept := func(name, body string) {
		t.Helper()
		if !strings.Contains(body, `id="submit-form"`) || !strings.Contains(body, account) || !strings.Contains(body, `value="yesterday evening"`) {
			t.Errorf("%s: the form does not come back with the text typed:\n%.2000s", name, body)
		}
	}
	// Past the desk's limit (8 MiB): read, the file dropped.
	_, body := f.post("/desks/helpdesk/submit", fields("en"), map[string][]byte{"big.bin": make([]byte, 9<<20)}, 413)
	kept("past the desk's limit", body)
	if !strings.Contains(body, "it takes at most 8 MB of files in all") {
		t.Errorf("past the desk's limit: the limit is not stated:\n%.3000s", body)
	}
	_, body = f.post("/desks/helpdesk/submit", fields("fr"), map[string][]byte{"big.bin": make([]byte, 9<<20)}, 413)
	if !strings.Contains(body, "au plus 8 Mo de fichiers") {
		t.Errorf("French: the limit is not stated in French units:\n%.3000s", body)
	}
	// Past what a form post may bring: cut at the door, its start read for
	// the text.
	f.srv.cfg.MaxFormBytes = 1 << 20
	_, body = f.post("/desks/helpdesk/submit", fields("ar"), map[string][]byte{"big.bin": make([]byte, 3<<20)}, 413)
	kept("cut at the door", body)
	if !strings.Contains(body, "يقبل 1 ميغابايت من الملفات") || !strings.Contains(body, `lang="ar"`) {
		t.Errorf("cut at the door: the limit is not stated in Arabic:\n%.3000s", body)
	}
	// One answer past maxFieldBytes: kept cut at the limit, and said so.
	long := strings.Repeat("é", maxFieldBytes) // two bytes each
	_, body = f.post("/desks/helpdesk/submit", [][2]string{{"lang", "en"}, {"f.what", long}, {"f.when", "yesterday evening"}}, nil, 413)
	if !strings.Contains(body, "each may hold at most 64 KB") || !strings.Contains(body, strings.Repeat("é", maxFieldBytes/2)+"</textarea>") ||
		!strings.Contains(body, `value="yesterday evening"`) {
		t.Errorf("a field too long is not kept cut at its limit:\n%.300s", body)
	}
	if subs, _ := f.spool.Submissions(nil); len(subs) != 0 {
		t.Fatalf("%d refused posts stored", len(subs))
	}
}

func TestHumanSize(t *testing.T) {
	f := newFixture(t)
	en, fr, ar := f.srv.pages.lang("en"), f.srv.pages.lang("fr"), f.srv.pages.lang("ar")
	for _, tc := range []struct {
		c    *web.Catalog
		n    int64
		want string
	}{
		{en, 0, "0 bytes"}, {en, 1023, "1023 bytes"}, {en, 1024, "1 KB"}, {en, 1536, "1.5 KB"}, {fr, 1536, "1,5 Ko"},
		{en, 10 << 20, "10 MB"}, {en, 10<<20 - 1, "9.9 MB"}, {en, 64 << 20, "64 MB"}, {en, 2 << 30, "2 GB"},
		{ar, 8 << 20, "8 ميغابايت"}, {fr, 300, "300 octets"}, {en, 99<<20 + 1<<19, "99 MB"},
	} {
		if got := humanSize(tc.c, tc.n); got != tc.want {
			t.Errorf("humanSize(%s, %d) = %q, want %q", tc.c.Lang, tc.n, got, tc.want)
		}
	}
}

// TestUnknownAddresses: an unknown desk says its address is not known and
// what to do, not that a report was not sent; an unknown page is a page in
// the submitter's language; an unknown API path is still JSON.
func TestUnknownAddresses(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ name, body string }{
		{"desk page", func() string { _, b := f.page("/desks/nosuch?lang=fr", 404); return b }()},
		{"desk post", func() string {
			_, b := f.post("/desks/nosuch/submit?lang=fr", [][2]string{{"lang", "fr"}, {"f.what", "x"}}, nil, 404)
			return b
		}()},
		{"self page", func() string { _, b := f.page("/desks/nosuch/self?lang=fr", 404); return b }()},
	} {
		if !strings.Contains(tc.body, "Adresse de bureau inconnue") || !strings.Contains(tc.body, "Vérifiez l’adresse que l’on vous a donnée") ||
			!strings.Contains(tc.body, `href="/?lang=fr"`) || strings.Contains(tc.body, "n’a pas été envoyé") {
			t.Errorf("unknown desk, %s:\n%s", tc.name, tc.body)
		}
	}
	resp, body := f.page("/no/such/page?lang=ar", 404)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, `<html lang="ar" dir="rtl">`) ||
		!strings.Contains(body, "الصفحة غير موجودة") || strings.Contains(body, "upload") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("unknown page: %s\n%s", ct, body)
	}
	for _, p := range []string{"/api/v1/nothing", "/api"} {
		resp, body = f.page(p, 404)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || !strings.Contains(body, `"code"`) {
			t.Errorf("unknown API path %s: %s\n%s", p, ct, body)
		}
	}
}

// TestRequiredFieldErrorsPunctuation: in every language, a missing field's
// label is quoted whole, its own question mark inside the quotes, and no
// punctuation is doubled after it.
func TestRequiredFieldErrorsPunctuation(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		lang, want string
		doubled    []string
	}{
		{"en", "Please fill in: “What happened?”. Nothing was sent", []string{"?.", "..", "?”.."}},
		{"ar", "يرجى تعبئة: «ماذا حدث؟». لم يُرسَل شيء", []string{"؟.", "..", "؟»..", "؟ ."}},
		{"fr", "Veuillez remplir : « Que s’est-il passé ? ». Rien n’a été envoyé", []string{"?.", "? .", "..", "? ».."}},
	} {
		_, body := f.post("/desks/helpdesk/submit", [][2]string{{"lang", tc.lang}, {"f.when", "hier"}}, nil, 400)
		alert := regexp.MustCompile(`<p class="notice error" role="alert">([^<]*)</p>`).FindStringSubmatch(body)
		// The label is isolated (U+2068 … U+2069); the punctuation
		// around it is judged without the isolates.
		if alert != nil {
			alert[1] = strings.NewReplacer("\u2068", "", "\u2069", "").Replace(alert[1])
		}
		if alert == nil || !strings.Contains(alert[1], tc.want) {
			t.Errorf("%s: the error is not %q:\n%v", tc.lang, tc.want, alert)
			continue
		}
		for _, d := range tc.doubled {
			if strings.Contains(alert[1], d) {
				t.Errorf("%s: %q in %q", tc.lang, d, alert[1])
			}
		}
	}
}

// TestNoCryptoNotice: the desk and check pages have the place where the
// script says why it cannot encrypt, and the words it says it with, in the
// page's language.
func TestNoCryptoNotice(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/desks/helpdesk?lang=fr", "/check?lang=fr"} {
		_, body := f.page(path, 200)
		for _, want := range []string{`id="mode-nocrypto"`, `"no_crypto_insecure":"JavaScript est activé, mais ce navigateur ne laisse pas la page chiffrer`,
			`"no_crypto_missing"`, `"size_mb":"{n} Mo"`, `"progress_bytes":"{sent} sur {total}"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %s", path, want)
			}
		}
	}
	_, body := f.page("/desks/helpdesk", 200)
	if !strings.Contains(body, `id="progress-text"`) {
		t.Error("the desk page has no place for the bytes sent")
	}
}

// TestWhatHappensFollowsRetention: the desk page says when the report is
// deleted as the desk's retention has it, in every language: by default
// once everyone it reaches has it, or hours after the first download.
func TestWhatHappensFollowsRetention(t *testing.T) {
	cats, langs, err := web.Catalogs()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range langs {
		c := cats[lang]
		all := whatHappens(c, crypto.Retention{DeleteAfterAckHours: 72, KeepUnackedDays: 90})
		first := whatHappens(c, crypto.Retention{DeleteAfterAckHours: 72, KeepUnackedDays: 90, AfterFirstAck: true})
		if all == first || strings.Contains(all, "72") || !strings.Contains(all, "90") || !strings.Contains(first, "72") {
			t.Errorf("%s: default %q, after first ack %q", lang, all, first)
		}
	}
}
