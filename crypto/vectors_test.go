package crypto

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The vectors in testdata/vectors are shared with every other
// implementation (the browser client runs them too). Each file is a few
// "key: value" header lines, a blank line, and a body, like age's testkit.
// "go test ./crypto -run TestVectors -update" rewrites the deterministic
// ones; sealed-* vectors are random and only written when missing.

var update = flag.Bool("update", false, "rewrite test vectors")

// Test-only keys. They are public: never use them for anything else.
const (
	testPQSecret      = "AGE-SECRET-KEY-PQ-1383AQM3TQM9Y85HJK77CMNCD76DPA9EMXG6T0L9UKPGQJV7N5YFQ6NCAVW"
	testClassicSecret = "AGE-SECRET-KEY-1TC97H5XWKNUS38AL2YWX47J6RRDT6Q7Y227FERATU45K67EYR2NS7Q5ST4"
	testAdminSecret   = "AGE-SECRET-KEY-1F44DK6RUGPFMGWUHSHETMRXHV0SQ670XN2SJKAR2ZZQMAYATJQHQH3FF7Q"
)

type vector struct {
	name   string
	header map[string][]string
	order  []string
	body   []byte
}

func (v *vector) get(k string) string {
	if len(v.header[k]) == 0 {
		return ""
	}
	return v.header[k][0]
}

func (v *vector) set(k, val string) {
	if v.header == nil {
		v.header = map[string][]string{}
	}
	if _, ok := v.header[k]; !ok {
		v.order = append(v.order, k)
	}
	v.header[k] = append(v.header[k], val)
}

func (v *vector) marshal() []byte {
	var b bytes.Buffer
	for _, k := range v.order {
		for _, val := range v.header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, val)
		}
	}
	b.WriteByte('\n')
	b.Write(v.body)
	return b.Bytes()
}

func parseVector(name string, data []byte) (*vector, error) {
	v := &vector{name: name}
	r := bufio.NewReader(bytes.NewReader(data))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("%s: header not terminated", name)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			break
		}
		k, val, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, fmt.Errorf("%s: bad header line %q", name, line)
		}
		v.set(k, val)
	}
	v.body, _ = io.ReadAll(r)
	return v, nil
}

func loadVectors(t *testing.T) []*vector {
	t.Helper()
	files, err := filepath.Glob("testdata/vectors/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors found (run with -update): %v", err)
	}
	var out []*vector
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := parseVector(filepath.Base(f), data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// errorCode maps bundle and header errors to the implementation-neutral
// codes the vectors use.
func errorCode(err error) string {
	for _, c := range []struct {
		err  error
		code string
	}{
		{ErrUnsafeName, "unsafe_name"}, {ErrNotFirst, "not_first"}, {ErrDigest, "digest"},
		{ErrPadding, "padding"}, {ErrTruncated, "truncated"}, {ErrBadTarHeader, "bad_tar_header"},
		{ErrUnexpectedEnt, "unexpected_entry"}, {ErrBadSignature, "bad_signature"}, {ErrMixedRecipients, "mixed_recipients"}, {ErrNotCanonical, "not_canonical"}, {ErrManifestNotCanonical, "not_canonical"},
		{ErrUnknownDefaultRoute, "unknown_default_route"}, {ErrSubmitterStatus, "submitter_status"}, {ErrReportMembers, "members"}, {ErrNoDigest, "no_digest"}, {ErrCoordinatorsNeedRoute, "coordinators_need_route"},
		{ErrEventSignature, "bad_signature"}, {ErrEventNotCanonical, "not_canonical"}, {ErrEventMalformed, "malformed"},
		{ErrEventPadding, "padding"},
		{ErrBundle, "bundle"},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "error"
}

func TestVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	for _, v := range loadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			switch v.get("kind") {
			case "identity":
				checkIdentityVector(t, v)
			case "padding":
				checkPaddingVector(t, v)
			case "manifest":
				checkManifestVector(t, v)
			case "request":
				checkRequestVector(t, v)
			case "bundle":
				checkBundleVector(t, v)
			case "sealed":
				checkSealedVector(t, v)
			case "receipt":
				checkReceiptVector(t, v)
			case "reply":
				checkReplyVector(t, v)
			case "event":
				checkEventVector(t, v)
			default:
				t.Fatalf("unknown kind %q", v.get("kind"))
			}
		})
	}
}

func writeVector(t *testing.T, name string, v *vector) {
	t.Helper()
	if err := os.WriteFile(filepath.Join("testdata/vectors", name), v.marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
}
