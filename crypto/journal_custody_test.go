package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const (
	custodyOrigSum  = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
	custodyCleanSum = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
)

func custodyDerive() *Custody {
	return &Custody{
		Action: CustodyDerive,
		Files:  []CustodyFile{{Name: "بيت.jpg", SHA256: custodyOrigSum, Size: 48213}},
		Derived: &Derivation{Name: "بيت.cleaned.jpg", From: custodyOrigSum, SHA256: custodyCleanSum, Size: 40100,
			Tool: "mat2", ToolVersion: "0.13.3"},
		Reason: "a working copy for the <partner> without the location",
	}
}

// writeCustodyVectors writes event-custody.txt: a signed derive event.
func writeCustodyVectors(t *testing.T) {
	alice, _ := journalIDs(t)
	e := &Event{Desk: "helpdesk", Case: testCase, CaseSHA256: testCaseSum, Category: "sea", Seq: 1, Clock: 3,
		Time: "2026-12-03T09:12:44Z", Change: Change{Custody: custodyDerive()}}
	if err := SignEvent(e, alice); err != nil {
		t.Fatal(err)
	}
	f := FactsOf(e, testReceived)
	if err := SignFacts(f, alice); err != nil {
		t.Fatal(err)
	}
	fb, err := MarshalFacts(f)
	if err != nil {
		t.Fatal(err)
	}
	b := mustMarshalEvent(t, e)
	v := &vector{}
	v.set("kind", "event")
	v.set("description", "a custody event: a cleaned copy derived from one attachment, with its tool, version and reason; its facts carry none of it")
	v.set("signer-secret", testClassicSecret)
	v.set("expect", "ok")
	v.set("digest", EventDigest(e))
	v.set("plain-size", fmt.Sprint(EventPlainSize(len(b))))
	v.set("received", testReceived)
	v.set("facts", string(fb))
	v.body = append(b, '\n')
	writeVector(t, "event-custody.txt", v)
}

func TestCustodyVectorsUpdate(t *testing.T) {
	if *update {
		writeCustodyVectors(t)
	}
}

func TestCustodyCheck(t *testing.T) {
	alice, _ := journalIDs(t)
	base := func(c *Custody) *Event {
		return &Event{Schema: EventDomain, Desk: "helpdesk", Case: testCase, CaseSHA256: testCaseSum, Category: "sea",
			Author: alice.Card().KeyID(), Seq: 1, Clock: 1, Time: "2026-12-03T09:12:44Z", Change: Change{Custody: c}}
	}
	file := CustodyFile{Name: "a.pdf", SHA256: custodyOrigSum, Size: 1}
	for _, tc := range []struct {
		name string
		c    func(*Custody)
		ok   bool
	}{
		{"derive", func(c *Custody) {}, true},
		{"decrypt with files", func(c *Custody) {
			*c = Custody{Action: CustodyDecrypt, Files: []CustodyFile{file, {Item: testOther, Name: "b", SHA256: custodyCleanSum}}}
		}, true},
		{"share with detail", func(c *Custody) { *c = Custody{Action: CustodyShare, Detail: "to bob"} }, true},
		{"evidence export", func(c *Custody) { *c = Custody{Action: CustodyEvidenceExport, Files: []CustodyFile{file}} }, true},
		{"refer", func(c *Custody) { *c = Custody{Action: CustodyRefer, Detail: "UNHCR"} }, true},
		{"export", func(c *Custody) { *c = Custody{Action: CustodyExport, Files: []CustodyFile{file}, Reason: "court"} }, true},
		{"unknown action", func(c *Custody) { *c = Custody{Action: "print"} }, false},
		{"no action", func(c *Custody) { *c = Custody{Detail: "x"} }, false},
		{"derive without derivation", func(c *Custody) { c.Derived = nil }, false},
		{"derivation without derive", func(c *Custody) { c.Action = CustodyExport }, false},
		{"derivation of another file", func(c *Custody) { c.Derived.From = custodyCleanSum }, false},
		{"derivation of two files", func(c *Custody) { c.Files = append(c.Files, file) }, false},
		{"derivative without tool", func(c *Custody) { c.Derived.Tool = "" }, false},
		{"tool version with a space", func(c *Custody) { c.Derived.ToolVersion = "0.13 3" }, false},
		{"tool version empty", func(c *Custody) { c.Derived.ToolVersion = "" }, false},
		{"derivative sha256 upper case", func(c *Custody) { c.Derived.SHA256 = strings.ToUpper(custodyCleanSum) }, false},
		{"file sha256 short", func(c *Custody) { c.Files[0].SHA256 = "abc"; c.Derived.From = "abc" }, false},
		{"file without name", func(c *Custody) { c.Files[0].Name = "" }, false},
		{"file name too long", func(c *Custody) { c.Files[0].Name = strings.Repeat("a", MaxCustodyName+1) }, false},
		{"file name not UTF-8", func(c *Custody) { c.Files[0].Name = "\xff" }, false},
		{"negative size", func(c *Custody) { c.Files[0].Size = -1 }, false},
		{"item not an ID", func(c *Custody) { c.Files[0].Item = "x" }, false},
		{"too many files", func(c *Custody) {
			*c = Custody{Action: CustodyExport}
			for range MaxCustodyFiles + 1 {
				c.Files = append(c.Files, file)
			}
		}, false},
		{"reason too long", func(c *Custody) { c.Reason = strings.Repeat("r", MaxEventText+1) }, false},
		{"reason and detail too long together", func(c *Custody) {
			c.Reason, c.Detail = strings.Repeat("r", MaxEventText/2+1), strings.Repeat("d", MaxEventText/2)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := custodyDerive()
			tc.c(c)
			err := base(c).Check()
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrEventMalformed) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}
}

// TestCustodyNotInFacts: the facts of a custody event carry none of its
// names, hashes, tool or words: only that it was one.
func TestCustodyNotInFacts(t *testing.T) {
	alice, _ := journalIDs(t)
	e := &Event{Desk: "helpdesk", Case: testCase, CaseSHA256: testCaseSum, Category: "sea", Seq: 1, Clock: 1,
		Time: "2026-12-03T09:12:44Z", Change: Change{Custody: custodyDerive()}}
	e.Change.Custody.Detail = "to the partner"
	if err := SignEvent(e, alice); err != nil {
		t.Fatal(err)
	}
	f := FactsOf(e, testReceived)
	if err := SignFacts(f, alice); err != nil {
		t.Fatal(err)
	}
	b, err := MarshalFacts(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"derive", custodyOrigSum, custodyCleanSum, "mat2", "0.13.3", "partner", "jpg"} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("facts carry %q: %s", s, b)
		}
	}
	if !bytes.Contains(b, []byte(`"change":{"custody":true}`)) {
		t.Errorf("facts change is not exactly the custody flag: %s", b)
	}
}
