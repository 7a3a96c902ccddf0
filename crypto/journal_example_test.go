package crypto_test

import (
	"fmt"
	"strings"

	"github.com/amana-relay/amana/crypto"
)

// A handler records a change to a case: the event is signed, sealed to
// the case's route, and its text-free facts to the desk's coordinators.
func ExampleSignEvent() {
	alice, _ := crypto.GenerateIdentity("alice", true)
	carol, _ := crypto.GenerateIdentity("carol", true) // a coordinator, outside the route
	route := []*crypto.Card{alice.Card()}

	e := &crypto.Event{
		Desk: "helpdesk", Case: "0123456789abcdef0123456789abcdef",
		CaseSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Category:   "sea", Seq: 1, Clock: 1, Time: "2026-12-03T09:15:42Z",
		Change: crypto.Change{Status: "acknowledged", Note: "called the focal point"},
	}
	if err := crypto.SignEvent(e, alice); err != nil {
		panic(err)
	}
	js, _ := crypto.MarshalEvent(e)
	sealed, _ := crypto.SealEvent(route, js)

	f := crypto.FactsOf(e, "2026-12-03T08:00:00Z")
	crypto.SignFacts(f, alice)
	fjs, _ := crypto.MarshalFacts(f)
	crypto.SealEvent([]*crypto.Card{carol.Card()}, fjs)

	// A handler on the route opens, parses and verifies it.
	plain, _ := crypto.OpenEvent(sealed, alice.Age())
	got, _ := crypto.ParseEvent(plain)
	signer, err := crypto.VerifyEvent(got, route)
	fmt.Println(signer.Name, err, got.Change.Note)
	// The facts say what changed, never the text.
	fmt.Println(f.Change.Status, strings.Contains(string(fjs), "focal"))
	// Output:
	// alice <nil> called the focal point
	// acknowledged false
}
