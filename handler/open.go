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
	if meta.Kind == api.KindSelf {
		c.Self, err = age.Decrypt(f, id)
	} else {
		c.Bundle, err = crypto.OpenBundle(f, id)
	}
	if err != nil {
		f.Close()
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("case %s: %w", cid[:12], ErrNotForYou)
		}
		return nil, fmt.Errorf("case %s: %w: %w", cid[:12], ErrDamaged, err)
	}
	return c, nil
}
