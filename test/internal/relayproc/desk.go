package relayproc

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/client"
)

// Desk is a harness's desk: its admin, its handlers and the signed
// manifest routing every submission to all of them.
type Desk struct {
	Admin    *crypto.Identity
	Handlers []*crypto.Identity
	Manifest *crypto.Manifest
	Envelope []byte
}

// NewDesk makes an admin and n handlers (post-quantum, or X25519 with
// classic) and signs the manifest of desk id. maxSubmission zero means the
// default limit.
func NewDesk(id, title string, n int, classic bool, maxSubmission int64) (*Desk, error) {
	admin, err := crypto.GenerateIdentity("admin", true)
	if err != nil {
		return nil, fmt.Errorf("generating admin identity: %w", err)
	}
	d := &Desk{Admin: admin}
	m := &crypto.Manifest{Version: 1, Desk: id, Title: title, Serial: 1}
	m.Limits.MaxSubmissionBytes = maxSubmission
	for i := range n {
		h, err := crypto.GenerateIdentity(fmt.Sprintf("handler%d", i+1), classic)
		if err != nil {
			return nil, fmt.Errorf("generating handler identity: %w", err)
		}
		d.Handlers = append(d.Handlers, h)
		m.Handlers = append(m.Handlers, h.Card().String())
	}
	if d.Envelope, err = crypto.SignManifest(m, admin.SigningKey()); err != nil {
		return nil, fmt.Errorf("signing desk manifest: %w", err)
	}
	d.Manifest = m
	return d, nil
}

// AdminKey is the key a relay pins for this desk's admin.
func (d *Desk) AdminKey() ed25519.PublicKey { return d.Admin.Card().SignKey }

// Cards are the cards a submission is encrypted to.
func (d *Desk) Cards() []*crypto.Card { return d.Manifest.Cards() }

// Publish sends the signed manifest to the relay at url as the admin.
func (d *Desk) Publish(ctx context.Context, url string) error {
	c, err := client.New(url, nil)
	if err != nil {
		return err
	}
	c.Key = d.Admin.SigningKey()
	if _, err := c.Publish(ctx, d.Manifest.Desk, d.Envelope); err != nil {
		return fmt.Errorf("publishing desk manifest: %w", err)
	}
	return nil
}
