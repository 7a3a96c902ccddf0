package relay

import (
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/web"
)

var (
	receiptWordsRE  = regexp.MustCompile(`<p class="words" id="receipt-words" dir="ltr"[^>]*>([^<]*)</p>`)
	receiptDigitsRE = regexp.MustCompile(`<p class="words digits" id="receipt-digits" dir="ltr"[^>]*>([^<]*)</p>`)
	detailsRE       = regexp.MustCompile(`(?s)<details[^>]*><summary>([^<]*)</summary>(.*?)</details>`)
)

// submitNoJS sends a report through the no-JavaScript form in lang and
// returns the receipt page.
func submitNoJS(t *testing.T, f *fixture, lang string) string {
	t.Helper()
	_, body := f.post("/desks/helpdesk/submit", [][2]string{{"lang", lang}, {"f.what", "what happened"}, {"f.when", "yesterday"}, {"category", "sea"}}, nil, 200)
	return body
}

// TestReceiptPageShowsOneReceipt: the no-JavaScript receipt page shows the
// receipt as words and as digits, which parse to the same secret as the
// report's mailbox, the form that suits the language first; the storage
// receipt's ID, hash and time are under "technical details", with labels
// French tells apart.
func TestReceiptPageShowsOneReceipt(t *testing.T) {
	cats, _, err := web.Catalogs()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"en", "fr", "ar"} {
		f := newFixture(t)
		body := submitNoJS(t, f, lang)
		c := cats[lang]
		w, d := receiptWordsRE.FindStringSubmatchIndex(body), receiptDigitsRE.FindStringSubmatchIndex(body)
		if w == nil || d == nil {
			t.Fatalf("%s: the receipt page lacks the words or the digits:\n%s", lang, body)
		}
		words, digits := body[w[2]:w[3]], body[d[2]:d[3]]
		byWords, err := crypto.ParseReceipt(words)
		if err != nil {
			t.Fatalf("%s: the words %q do not parse: %v", lang, words, err)
		}
		byDigits, err := crypto.ParseReceipt(digits)
		if err != nil {
			t.Fatalf("%s: the digits %q do not parse: %v", lang, digits, err)
		}
		if byDigits.Words() != byWords.Words() || byDigits.Digits() != digits {
			t.Errorf("%s: the words and digits are not the same receipt", lang)
		}
		r, _ := f.only(f.alice)
		if r.Mailbox != byDigits.MailboxID() {
			t.Errorf("%s: the receipt shown does not open the report's mailbox", lang)
		}
		if digitsFirst := d[0] < w[0]; digitsFirst != (lang == "ar") {
			t.Errorf("%s: digits first is %v", lang, digitsFirst)
		}
		if !strings.Contains(body, html.EscapeString(c.T("receipt_both"))) || !strings.Contains(body, html.EscapeString(c.T("receipt_words_keep"))) {
			t.Errorf("%s: the page does not say the two forms are one receipt, or what it opens", lang)
		}
		// The storage receipt is in <details>, and only there.
		m := detailsRE.FindStringSubmatch(body)
		if m == nil || m[1] != html.EscapeString(c.T("receipt_technical")) {
			t.Fatalf("%s: no technical details:\n%s", lang, body)
		}
		rest := strings.Replace(body, m[0], "", 1)
		for _, k := range []string{"receipt_id", "receipt_sha256", "receipt_received", "receipt_keep"} {
			label := html.EscapeString(c.T(k))
			if !strings.Contains(m[2], label) || strings.Contains(rest, label) {
				t.Errorf("%s: %s is not only inside the technical details", lang, k)
			}
		}
		if id := regexp.MustCompile(`<dd dir="ltr">([0-9a-z-]+)</dd>`).FindStringSubmatch(m[2]); id == nil || strings.Contains(rest, id[1]) {
			t.Errorf("%s: the storage ID is not isolated in the technical details", lang)
		}
	}
	// French names the receipt, the ID, the hash and the time differently.
	fr := cats["fr"]
	seen := map[string]string{}
	for _, k := range []string{"receipt_words_title", "receipt_id", "receipt_sha256", "receipt_received"} {
		s := fr.T(k)
		if other, ok := seen[s]; ok {
			t.Errorf("French %s and %s are both %q", k, other, s)
		}
		seen[s] = k
		if k != "receipt_words_title" && strings.Contains(s, "Reçu") {
			t.Errorf("French %s, %q, is called a receipt", k, s)
		}
	}
}

// TestDeskPageReceiptSection: the hidden section the browser client fills
// holds both forms, isolated left-to-right, digits first in Arabic and
// words first in English and French, with the storage receipt under
// "technical details"; the safety list says before the form that the
// receipt opens the replies for whoever finds it; and the script has every
// string it needs to build the section itself.
func TestDeskPageReceiptSection(t *testing.T) {
	f := newFixture(t)
	cats, _, _ := web.Catalogs()
	section := regexp.MustCompile(`(?s)<section id="receipt" class="receipt" hidden>.*?</section>`)
	for _, lang := range []string{"en", "fr", "ar"} {
		c := cats[lang]
		_, body := f.page("/desks/helpdesk?lang="+lang, 200)
		s := section.FindString(body)
		w, d := strings.Index(s, `<p class="words" id="receipt-words" dir="ltr"`), strings.Index(s, `<p class="words digits" id="receipt-digits" dir="ltr"`)
		if w < 0 || d < 0 {
			t.Fatalf("%s: the receipt section lacks isolated words or digits:\n%s", lang, s)
		}
		if digitsFirst := d < w; digitsFirst != (c.T("receipt_first") == "digits") || digitsFirst != (lang == "ar") {
			t.Errorf("%s: digits first is %v", lang, digitsFirst)
		}
		m := detailsRE.FindStringSubmatch(s)
		if m == nil || !strings.Contains(m[2], `id="receipt-id"`) || !strings.Contains(m[2], `id="receipt-sha256"`) || strings.Contains(strings.Replace(s, m[0], "", 1), `id="receipt-id"`) {
			t.Errorf("%s: the storage receipt is not under technical details:\n%s", lang, s)
		}
		safety := html.EscapeString(c.T("safety_receipt"))
		if !strings.Contains(body, "<li>"+safety+"</li>") || !strings.Contains(safety, "45") || !strings.Contains(safety, "12") {
			t.Errorf("%s: the safety list does not name both forms of the receipt: %s", lang, safety)
		}
		for _, k := range []string{"receipt_first", "receipt_technical", "receipt_words_label", "receipt_digits_label"} {
			if !strings.Contains(body, `"`+k+`"`) {
				t.Errorf("%s: the page's strings for the script lack %s", lang, k)
			}
		}
	}
	// What the safety list and the receipt say, in English.
	for _, k := range []string{"safety_receipt", "receipt_words_keep"} {
		if s := cats["en"].T(k); !strings.Contains(s, "opens the desk's replies") || !strings.Contains(s, "anyone who finds it can read the conversation") {
			t.Errorf("%s does not say what the receipt opens and who can read it: %q", k, s)
		}
	}
}

// TestNoJavaScriptCheckWithArabicIndicDigits: a report sent from the
// Arabic page without JavaScript, whose receipt's digits are typed back in
// Arabic-Indic digits, with Arabic commas and bidi marks, on the
// no-JavaScript check page, opens the desk's reply; a digit mistyped is
// refused with the page's advice.
func TestNoJavaScriptCheckWithArabicIndicDigits(t *testing.T) {
	f := newFixture(t)
	body := submitNoJS(t, f, "ar")
	m := receiptDigitsRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no digits on the receipt page:\n%s", body)
	}
	rc, err := crypto.ParseReceipt(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := f.only(f.alice); r.Mailbox != rc.MailboxID() {
		t.Fatal("the digits shown are not the report's receipt")
	}
	f.signed(f.alice, "POST", "/api/v1/mailboxes/"+rc.MailboxID()+"/replies?desk=helpdesk&category=sea", sealReply(t, f, rc, "MARKER reply to the digits"), 201)
	arabic := strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' {
			return '\u0660' + c - '0'
		}
		return c
	}, m[1])
	typed := "\u200f" + strings.ReplaceAll(arabic, " ", "، ") + "\u200f"
	_, page := f.post("/check", [][2]string{{"lang", "ar"}, {"receipt", typed}}, nil, 200)
	if !strings.Contains(page, "MARKER reply to the digits") {
		t.Fatalf("check page:\n%s", page)
	}
	// The thread page carries the receipt on in its canonical words.
	if !strings.Contains(page, `name="receipt" value="`+rc.Words()+`"`) {
		t.Error("the thread page does not carry the receipt's words")
	}
	wrong := []rune(arabic)
	wrong[0] = '\u0660' + (wrong[0]-'\u0660'+1)%10
	cats, _, _ := web.Catalogs()
	if _, page := f.post("/check", [][2]string{{"lang", "ar"}, {"receipt", string(wrong)}}, nil, 400); !strings.Contains(page, html.EscapeString(cats["ar"].T("receipt_bad"))) || strings.Contains(page, "MARKER") {
		t.Fatalf("a mistyped digit:\n%s", page)
	}
}
