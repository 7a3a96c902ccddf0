package handler

import (
	"errors"
	"fmt"
	"io"
	"os"

	"filippo.io/age"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
)

// Case is a stored case being read: either an Amana bundle (Bundle is
// set) or a file the submitter encrypted with age themselves (Self reads
// its plaintext). Its plaintext is read from the ciphertext as it goes and
// never written anywhere.
type Case struct {
	Meta   *cases.Meta
	Bundle *crypto.BundleReader
	Self   io.Reader
	file   *os.File
	cached bool // opened with the file key its metadata keeps
}

// Close closes the case's file.
func (c *Case) Close() error { return c.file.Close() }

// Errors of Open, besides those of the case store (cases.ErrNotFound,
// cases.ErrAmbiguous).
var (
	// ErrNotForYou: the case is not encrypted to this identity.
	ErrNotForYou = errors.New("case is not encrypted to this key")
	// ErrDamaged: the case does not decrypt, or is not a valid bundle.
	ErrDamaged = errors.New("case is damaged")
)

// Open resolves an ID prefix in st and starts decrypting the case with id.
// A case whose metadata keeps its file key sealed under id's cache key
// (crypto.FileKeyCache, set by Pull) is first opened with that key alone,
// which age checks against the header's MAC; if it does not open (another
// case's, file's or identity's, altered), the case is opened with id as if there
// were none.
func Open(st *cases.Store, prefix string, id age.Identity) (*Case, error) {
	cid, err := st.Resolve(prefix)
	if err != nil {
		return nil, err
	}
	meta, err := st.Meta(cid)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(st.BundlePath(cid))
	if err != nil {
		return nil, fmt.Errorf("opening case %s: %w", cid, err)
	}
	c := &Case{Meta: meta, file: f}
	if cached := cachedIdentity(id, cid, meta); cached != nil {
		if err := c.start(cached); err == nil {
			c.cached = true
			return c, nil
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("opening case %s: %w", cid, err)
		}
	}
	if err := c.start(id); err != nil {
		f.Close()
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("case %s: %w", cid[:12], ErrNotForYou)
		}
		return nil, fmt.Errorf("case %s: %w: %w", cid[:12], ErrDamaged, err)
	}
	return c, nil
}

// start begins decrypting c's file with id.
func (c *Case) start(id age.Identity) (err error) {
	if c.Meta.Kind == api.KindSelf {
		c.Self, err = age.Decrypt(c.file, id)
	} else {
		c.Bundle, err = crypto.OpenBundle(c.file, id)
	}
	return err
}

// cachedIdentity is the identity giving meta's sealed file key, nil when
// the case keeps none or it does not open under id's cache key for case
// cid (the folder Resolve found, not the ID case.json names) and the
// ciphertext SHA-256 case.json records.
func cachedIdentity(id age.Identity, cid string, meta *cases.Meta) age.Identity {
	if meta.FileKey == "" {
		return nil
	}
	cache, ok := crypto.NewFileKeyCache(id)
	if !ok {
		return nil
	}
	ci, err := cache.Identity(cid, meta.SHA256, meta.FileKey)
	if err != nil {
		return nil
	}
	return ci
}
