package crypto

import (
	"crypto/ed25519"
	"errors"
	"fmt"
)

// ReplyDomain is the first line of the text a handler signs in a reply.
const ReplyDomain = "amana-reply/v1"

// ErrReplySignature: a reply's signature is missing, malformed, not by a
// handler of the desk, or does not verify.
var ErrReplySignature = errors.New("reply signature does not verify")

func replySigned(r *Report) ([]byte, error) {
	c := *r
	c.Signature = ""
	b, err := MarshalReport(&c)
	if err != nil {
		return nil, err
	}
	return append([]byte(ReplyDomain+"\n"), b...), nil
}

// SignReply marks r as a reply by the handler id and signs it. The
// signature covers report.json with an empty signature, which lists every
// attachment's SHA-256, so it covers the whole reply. Call it after the
// attachments are filled in (WriteBundle and SealBundle fill them, so sign
// with SignReplyFiles instead when sealing).
func SignReply(r *Report, id *Identity) error {
	r.SealedBy = SealedByHandler
	r.From = id.Card().KeyID()
	r.Signature = ""
	msg, err := replySigned(r)
	if err != nil {
		return err
	}
	r.Signature = b64.EncodeToString(ed25519.Sign(id.SigningKey(), msg))
	return nil
}

// SignReplyFiles signs r as SignReply does, first filling its attachments
// from files as WriteBundle will.
func SignReplyFiles(r *Report, files []File, id *Identity) error {
	r.Attachments = make([]Attachment, len(files))
	for i, f := range files {
		r.Attachments[i] = f.Attachment
	}
	r.Schema = BundleSchema
	return SignReply(r, id)
}

// VerifyReply checks a reply was signed by one of the handlers in cards
// and returns that handler's card.
func VerifyReply(r *Report, cards []*Card) (*Card, error) {
	if r.SealedBy != SealedByHandler || r.From == "" || r.Signature == "" {
		return nil, fmt.Errorf("%w: not a signed reply", ErrReplySignature)
	}
	sig, err := b64.DecodeString(r.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: malformed signature", ErrReplySignature)
	}
	var signer *Card
	for _, c := range cards {
		if c.KeyID() == r.From {
			signer = c
		}
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: signed by a key that is not a handler of the desk", ErrReplySignature)
	}
	msg, err := replySigned(r)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(signer.SignKey, msg, sig) {
		return nil, ErrReplySignature
	}
	return signer, nil
}
