package cli

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/evidence"
)

type evidenceVerifyOptions struct{ json bool }

func newEvidenceVerify(e *env) *cobra.Command {
	var o evidenceVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify DIR",
		Short: "verify an evidence bundle: every file, the signature, the custody log",
		Long: `Verify an evidence bundle as sha256sum -c and openssl would: SHA256SUMS.sig is an
Ed25519 signature over SHA256SUMS by the key in handler.pub.pem, every file listed
has its SHA-256, and no file is there that is not listed. Every changed, missing or
extra file is named, and the exit code is 3. It also checks custody.json: each
event is canonical and signed by its author's key, and the bundle's own
evidence-export event is signed by the key in handler.pub.pem.

It does not say whose key that is: compare the fingerprint printed with the
handler's in the desk's manifest ('amana desk show').`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runEvidenceVerify(e, &o, args[0]) },
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print what was found as JSON (docs/cli.md)")
	return cmd
}

func runEvidenceVerify(e *env, o *evidenceVerifyOptions, dir string) error {
	v, err := evidence.Verify(dir)
	if err != nil {
		return fail(ExitTrust, "is "+dir+" an evidence bundle? it needs SHA256SUMS and handler.pub.pem", err, "cannot verify %s", dir)
	}
	events, custodyErr := checkCustodyLog(dir, v.Key)
	fp := crypto.KeyFingerprint(v.Key)
	if o.json {
		out := struct {
			OK          bool               `json:"ok"`
			Key         string             `json:"key_id"`
			Fingerprint string             `json:"fingerprint"`
			Files       int                `json:"files"`
			Problems    []evidence.Problem `json:"problems"`
			Custody     int                `json:"custody_events"`
			CustodyErr  string             `json:"custody_error,omitempty"`
		}{len(v.Problems) == 0 && custodyErr == nil, base64.RawURLEncoding.EncodeToString(v.Key), fp, v.Files, v.Problems, events, ""}
		if out.Problems == nil {
			out.Problems = []evidence.Problem{}
		}
		if custodyErr != nil {
			out.CustodyErr = custodyErr.Error()
		}
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		for _, p := range v.Problems {
			switch p.What {
			case evidence.ProblemSignature:
				fmt.Fprintf(e.stdout, "BAD SIGNATURE: %s does not verify over SHA256SUMS with handler.pub.pem\n", p.Path)
			case evidence.ProblemChanged:
				fmt.Fprintf(e.stdout, "CHANGED: %s\n", clean(p.Path, false))
			case evidence.ProblemMissing:
				fmt.Fprintf(e.stdout, "MISSING: %s\n", clean(p.Path, false))
			case evidence.ProblemExtra:
				fmt.Fprintf(e.stdout, "EXTRA: %s (not in SHA256SUMS)\n", clean(p.Path, false))
			}
		}
		if custodyErr != nil {
			fmt.Fprintf(e.stdout, "CUSTODY: %s\n", clean(custodyErr.Error(), false))
		}
	}
	if len(v.Problems) > 0 || custodyErr != nil {
		return fail(ExitTrust, "the bundle is not as it was signed: get it again from its source", nil, "%s does not verify: %d problem(s)", dir, len(v.Problems)+btoi(custodyErr != nil))
	}
	fmt.Fprintf(e.stderr, "verified %s: %d file(s) as listed in SHA256SUMS, none missing or extra; signed by key %s; %d custody event(s), each signed by its handler\n", dir, v.Files, fp, events)
	fmt.Fprintf(e.stderr, "hint: check that key %s is the handler's in the desk's manifest ('amana desk show')\n", fp)
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// maxCustodyLog bounds custody.json as verify reads it.
const maxCustodyLog = 64 << 20

// checkCustodyLog checks DIR/custody.json (parseCustodyLog).
func checkCustodyLog(dir string, key ed25519.PublicKey) (int, error) {
	f, err := os.Open(filepath.Join(dir, "custody.json"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCustodyLog+1))
	if err != nil {
		return 0, err
	}
	return parseCustodyLog(data, key)
}

// parseCustodyLog checks a custody log: its schema, every event
// canonical, of the log's case and signed by its author, and an
// evidence-export event signed by key, the bundle's. It returns how many
// events it holds.
func parseCustodyLog(data []byte, key ed25519.PublicKey) (int, error) {
	if len(data) > maxCustodyLog {
		return 0, fmt.Errorf("custody.json is larger than %d bytes", maxCustodyLog)
	}
	var log struct {
		Schema string            `json:"schema"`
		Case   string            `json:"case"`
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(data, &log); err != nil || log.Schema != custodySchema {
		return 0, errors.New("custody.json is not an Amana custody log")
	}
	signedByBundle := false
	for i, raw := range log.Events {
		ev, err := crypto.ParseEvent(raw)
		if err != nil {
			return 0, fmt.Errorf("custody event %d: %w", i+1, err)
		}
		if ev.Case != log.Case {
			return 0, fmt.Errorf("custody event %d is of another case", i+1)
		}
		pub, err := base64.RawURLEncoding.DecodeString(ev.Author)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return 0, fmt.Errorf("custody event %d: its author is not a key", i+1)
		}
		if _, err := crypto.VerifyEvent(ev, []*crypto.Card{{Name: "author", SignKey: pub}}); err != nil {
			return 0, fmt.Errorf("custody event %d: %w", i+1, err)
		}
		if ev.Change.Custody == nil {
			return 0, fmt.Errorf("custody event %d is not a custody event", i+1)
		}
		if ev.Change.Custody.Action == crypto.CustodyEvidenceExport && slices.Equal(pub, key) {
			signedByBundle = true
		}
	}
	if !signedByBundle {
		return 0, errors.New("no evidence-export event in custody.json is signed by the key in handler.pub.pem")
	}
	return len(log.Events), nil
}
