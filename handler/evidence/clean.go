package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrNotCleaned: mat2 could not clean the file (its format is not
// supported, or the file is damaged); no cleaned copy was written.
var ErrNotCleaned = errors.New("mat2 could not clean the file")

// Cleaner makes cleaned copies with mat2 in a Sandbox.
type Cleaner struct {
	Sandbox *Sandbox // nil: the default sandbox
	once    sync.Once
	version string
	verErr  error
}

// Cleaned is one cleaned copy written.
type Cleaned struct {
	Path   string // where it was written
	Name   string // its file name
	SHA256 string // hex
	Size   int64
	// Warning is what mat2 said while cleaning (for example that it
	// filled mandatory fields with standard data), "" if nothing.
	Warning string
}

// CleanedName is the name of the cleaned copy of name, as mat2 names it:
// photo.jpg -> photo.cleaned.jpg, notes -> notes.cleaned.
func CleanedName(name string) string {
	ext := filepath.Ext(name)
	if ext == name {
		ext = ""
	}
	return strings.TrimSuffix(name, ext) + ".cleaned" + ext
}

// Version is mat2's version ("0.13.3"), asked once.
func (c *Cleaner) Version(ctx context.Context) (string, error) {
	c.once.Do(func() {
		if _, err := toolPath("mat2", PackageMat2); err != nil {
			c.verErr = err
			return
		}
		sb := c.sandbox()
		sb.Timeout = time.Minute
		out, _, err := sb.exec(ctx, &run{}, "mat2", "--version")
		if err != nil {
			c.verErr = fmt.Errorf("asking mat2 its version: %w", err)
			return
		}
		v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "mat2 ")
		if !ok || v == "" || len(v) > 64 || strings.ContainsAny(v, " \t\n") {
			c.verErr = fmt.Errorf("mat2 --version said %q", firstLine(out))
			return
		}
		c.version = v
	})
	return c.version, c.verErr
}

func (c *Cleaner) sandbox() *Sandbox {
	sb := Sandbox{}
	if c.Sandbox != nil {
		sb = *c.Sandbox
	}
	return &sb
}

// Clean makes a cleaned copy of the file at src, writing it into dir as
// CleanedName(name). src is never written: the sandbox sees it read-only,
// under a plain name with its extension (mat2 chooses how to clean by
// it), beside an empty scratch directory in dir, the only place mat2 may
// write, removed afterwards. An existing file is never overwritten. A
// file mat2 cannot clean returns an error wrapping ErrNotCleaned with
// mat2's words.
func (c *Cleaner) Clean(ctx context.Context, src, dir, name string) (*Cleaned, error) {
	if _, err := c.Version(ctx); err != nil {
		return nil, err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	final := filepath.Join(dir, CleanedName(name))
	if _, err := os.Lstat(final); err == nil {
		return nil, fmt.Errorf("%s already exists; it was left alone", final)
	}
	scratch, err := os.MkdirTemp(dir, ".amana-clean-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	ext := safeExt(name)
	in, out := "original"+ext, "original.cleaned"+ext
	// The cleaned copy of a video can be larger than the original only
	// by its container; 64 MiB of room is plenty.
	_, stderr, err := c.sandbox().exec(ctx, &run{
		binds: []bind{{Host: scratch, Dir: "/out", RW: true}, {Host: src, Dir: "/out/" + in}},
		chdir: "/out",
		fsize: 2*fi.Size() + 64<<20,
	}, "mat2", in)
	words := mat2Words(stderr)
	var ee interface{ ExitCode() int }
	if err != nil && !errors.As(err, &ee) {
		return nil, err
	}
	made := filepath.Join(scratch, out)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNotCleaned, words)
	}
	st, lerr := os.Lstat(made)
	if lerr != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: mat2 wrote no cleaned copy (%s)", ErrNotCleaned, words)
	}
	sum, size, err := hashFile(made)
	if err != nil {
		return nil, err
	}
	if size == 0 && fi.Size() > 0 {
		// mat2 leaves an empty file behind when a tool under it fails.
		return nil, fmt.Errorf("%w: mat2 wrote an empty copy (%s)", ErrNotCleaned, words)
	}
	// link, unlike rename, never replaces a file that appeared meanwhile.
	if err := os.Link(made, final); err != nil {
		return nil, fmt.Errorf("writing %s: %w", final, err)
	}
	if err := os.Chmod(final, 0o600); err != nil {
		return nil, err
	}
	return &Cleaned{Path: final, Name: CleanedName(name), SHA256: sum, Size: size, Warning: warning(words)}, nil
}

// safeExt is name's extension if it is short and plain (letters and
// digits), lower-cased, else "": mat2 then refuses the file as of an
// unknown format rather than guessing.
func safeExt(name string) string {
	ext := filepath.Ext(name)
	if len(ext) < 2 || len(ext) > 10 {
		return ""
	}
	for _, r := range ext[1:] {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return ""
		}
	}
	return strings.ToLower(ext)
}

// mat2Words is mat2's message, one line, the sandbox's file name taken
// out so it does not read as the attachment's.
func mat2Words(stderr []byte) string {
	s := strings.Join(strings.Fields(string(bytes.TrimSpace(stderr))), " ")
	s = strings.NewReplacer(`"original.`, `"the file.`, "original.", "the file.").Replace(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	if s == "" {
		s = "mat2 said nothing"
	}
	return s
}

func warning(words string) string {
	if words == "mat2 said nothing" {
		return ""
	}
	return words
}

// hashFile is a file's hex SHA-256 and size.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// HashFile is a file's hex SHA-256 and size.
func HashFile(path string) (string, int64, error) { return hashFile(path) }
