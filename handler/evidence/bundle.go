package evidence

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The files of an evidence bundle that SHA256SUMS does not list: itself
// and its signature.
const (
	SumsFile = "SHA256SUMS"
	SigFile  = "SHA256SUMS.sig"
	KeyFile  = "handler.pub.pem"
)

// MaxSums bounds a SHA256SUMS file read by ParseSums.
const MaxSums = 4 << 20

// ErrSums: a SHA256SUMS file is not in the form WriteSums writes.
var ErrSums = errors.New("SHA256SUMS is malformed")

// Sum is one line of SHA256SUMS.
type Sum struct {
	SHA256 string // hex, lower case
	Path   string // relative, slash-separated
}

// SumsOf hashes every regular file under dir but SHA256SUMS and its
// signature, sorted by path. Anything else (a directory's symlink, a
// device) is an error: a bundle holds plain files only.
func SumsOf(dir string) ([]Sum, error) {
	var out []Sum
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s is not a regular file", rel)
		case rel == SumsFile || rel == SigFile:
			return nil
		}
		sum, _, err := hashFile(p)
		if err != nil {
			return err
		}
		out = append(out, Sum{SHA256: sum, Path: rel})
		return nil
	})
	slices.SortFunc(out, func(a, b Sum) int { return strings.Compare(a.Path, b.Path) })
	return out, err
}

// MarshalSums writes sums as sha256sum does, in text mode: "HEX  PATH\n".
// A path sha256sum would escape (a backslash, a line feed) is refused.
func MarshalSums(sums []Sum) ([]byte, error) {
	var b bytes.Buffer
	for _, s := range sums {
		if !validSumPath(s.Path) {
			return nil, fmt.Errorf("%w: path %q cannot be written", ErrSums, s.Path)
		}
		fmt.Fprintf(&b, "%s  %s\n", s.SHA256, s.Path)
	}
	return b.Bytes(), nil
}

func validSumPath(p string) bool {
	if p == "" || strings.ContainsAny(p, "\\\n\r\x00") || strings.HasPrefix(p, "/") {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	return true
}

// ParseSums parses a SHA256SUMS file as MarshalSums writes it: every line
// "HEX  PATH", paths relative and unique.
func ParseSums(data []byte) ([]Sum, error) {
	if len(data) > MaxSums {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrSums, MaxSums)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%w: does not end in a line feed", ErrSums)
	}
	var out []Sum
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxSums)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		sum, path, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" || !validSumPath(path) {
			return nil, fmt.Errorf("%w: line %d", ErrSums, n)
		}
		if seen[path] {
			return nil, fmt.Errorf("%w: %s listed twice", ErrSums, path)
		}
		seen[path] = true
		out = append(out, Sum{SHA256: sum, Path: path})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSums, err)
	}
	return out, nil
}

// PublicKeyPEM encodes an Ed25519 public key as a PEM "PUBLIC KEY"
// (SubjectPublicKeyInfo), as openssl reads it.
func PublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKeyPEM reads what PublicKeyPEM writes: one PEM block, an
// Ed25519 SubjectPublicKeyInfo, nothing after it.
func ParsePublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	b, rest := pem.Decode(data)
	if b == nil || b.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("not one PEM public key")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("not an Ed25519 public key")
	}
	return pub, nil
}

// Problem is one thing wrong with a bundle.
type Problem struct {
	Path string `json:"path"`
	What string `json:"what"` // ProblemChanged, ProblemMissing, ProblemExtra, ProblemSignature
}

// What a Problem is.
const (
	ProblemChanged   = "changed"   // the file's SHA-256 is not the one listed
	ProblemMissing   = "missing"   // listed and absent
	ProblemExtra     = "extra"     // present and not listed
	ProblemSignature = "signature" // SHA256SUMS.sig does not verify with handler.pub.pem
)

// Verification is what Verify found.
type Verification struct {
	Key      ed25519.PublicKey // the key in handler.pub.pem
	Files    int               // files listed
	Problems []Problem
}

// Verify checks a bundle directory as a third party would with sha256sum
// -c and openssl: SHA256SUMS.sig verifies over SHA256SUMS with the key in
// handler.pub.pem, every file listed has its SHA-256, and no file is there
// that is not listed. It returns an error only when the check cannot be
// made at all (no SHA256SUMS, a malformed one, no key).
func Verify(dir string) (*Verification, error) {
	sumsData, err := readBounded(filepath.Join(dir, SumsFile), MaxSums)
	if err != nil {
		return nil, err
	}
	sums, err := ParseSums(sumsData)
	if err != nil {
		return nil, err
	}
	keyData, err := readBounded(filepath.Join(dir, KeyFile), 4096)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKeyPEM(keyData)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyFile, err)
	}
	v := &Verification{Key: pub, Files: len(sums)}
	sig, err := readBounded(filepath.Join(dir, SigFile), 1024)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		v.Problems = append(v.Problems, Problem{SigFile, ProblemMissing})
	} else if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, sumsData, sig) {
		v.Problems = append(v.Problems, Problem{SigFile, ProblemSignature})
	}
	have, err := SumsOf(dir)
	if err != nil {
		return nil, err
	}
	got := map[string]string{}
	for _, s := range have {
		got[s.Path] = s.SHA256
	}
	listed := map[string]bool{}
	for _, s := range sums {
		listed[s.Path] = true
		switch h, ok := got[s.Path]; {
		case !ok:
			v.Problems = append(v.Problems, Problem{s.Path, ProblemMissing})
		case h != s.SHA256:
			v.Problems = append(v.Problems, Problem{s.Path, ProblemChanged})
		}
	}
	for _, s := range have {
		if !listed[s.Path] {
			v.Problems = append(v.Problems, Problem{s.Path, ProblemExtra})
		}
	}
	return v, nil
}

func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > max {
		return nil, fmt.Errorf("%s: not a regular file of at most %d bytes", filepath.Base(path), max)
	}
	b := make([]byte, fi.Size())
	_, err = io.ReadFull(f, b)
	return b, err
}

// ReadmeFile is the bundle's own instructions.
const ReadmeFile = "README.txt"

// Readme is README.txt of a bundle: how anyone verifies it without Amana.
const Readme = `Evidence bundle written by Amana (amana evidence export)

originals/      the files as the submitter sent them, byte for byte
derived/        working copies cleaned of metadata with mat2, if any;
                custody.json links each to its original (action "derive")
renamed/        files whose name could not be used as a file name, if any,
                as attachment-N.EXT; renamed/NAMES.txt gives the real names
report.json     the report: the submitter's answers and the list of files
                with their SHA-256 as they were sealed: on the submitter's
                own device, or by the relay when "sealed_by" is "server"
custody.json    the custody events of the case: who decrypted, exported,
                derived, shared or referred its files, when and why, each
                signed by its handler (Ed25519, docs/protocol.md 8.11.9)
SHA256SUMS      the SHA-256 of every other file here
SHA256SUMS.sig  a detached Ed25519 signature over SHA256SUMS by the
                handler who wrote the bundle
handler.pub.pem that handler's public key (SubjectPublicKeyInfo)

To verify, in this directory:

  sha256sum -c SHA256SUMS
  openssl pkeyutl -verify -pubin -inkey handler.pub.pem -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig
  diff <(cut -c67- SHA256SUMS) <(find . -type f ! -path ./SHA256SUMS ! -path ./SHA256SUMS.sig | cut -c3- | LC_ALL=C sort)

The first must print OK for every file listed. The second must print
"Signature Verified Successfully" (OpenSSL 3.0 or later). The third, in
bash, must print nothing: it lists any file here that SHA256SUMS does not
(sha256sum -c does not see a file added).

Then check that handler.pub.pem is the key of the handler you expect: its
Ed25519 key is that handler's key ID in the desk's signed manifest, and
'amana evidence verify DIR' prints its fingerprint as 'amana desk show'
does. 'amana evidence verify DIR' makes the same checks, names every
changed, missing or extra file, and checks each custody event's signature.
`

// Seal finishes a bundle in dir: it writes handler.pub.pem and README.txt,
// then SHA256SUMS over every file, then SHA256SUMS.sig, the Ed25519
// signature of priv over SHA256SUMS's bytes. It never overwrites a file.
func Seal(dir string, priv ed25519.PrivateKey) ([]Sum, error) {
	pemData, err := PublicKeyPEM(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	if err := WriteNew(filepath.Join(dir, KeyFile), pemData); err != nil {
		return nil, err
	}
	if err := WriteNew(filepath.Join(dir, ReadmeFile), []byte(Readme)); err != nil {
		return nil, err
	}
	sums, err := SumsOf(dir)
	if err != nil {
		return nil, err
	}
	data, err := MarshalSums(sums)
	if err != nil {
		return nil, err
	}
	if err := WriteNew(filepath.Join(dir, SumsFile), data); err != nil {
		return nil, err
	}
	if err := WriteNew(filepath.Join(dir, SigFile), ed25519.Sign(priv, data)); err != nil {
		return nil, err
	}
	return sums, nil
}

// WriteNew writes a new file with mode 0600 and syncs it; an existing
// file is an error and is left alone.
func WriteNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
