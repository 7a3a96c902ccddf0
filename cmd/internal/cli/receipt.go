package cli

import (
	"errors"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

type receiptOptions struct {
	relay       string
	receiptFile string
	fingerprint string
	noRecord    bool
}

// recording is how check and followup remember the desk's key.
func (o *receiptOptions) recording() recording {
	if o.noRecord {
		return recordNothing
	}
	return recordPinned
}

func (o *receiptOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.relay, "relay", "", "the relay's intake onion URL (required)")
	cmd.Flags().StringVar(&o.receiptFile, "receipt-file", "", "read the receipt (its 12 words or its 45 digits) from this file instead of asking on the terminal")
	cmd.Flags().StringVar(&o.fingerprint, "desk-fingerprint", "", "the desk's fingerprint, as the desk publishes it; needed when this machine does not remember the desk's key")
	cmd.Flags().BoolVar(&o.noRecord, "no-record", false, "leave no record of the desk on this machine: its key is not remembered, so only --desk-fingerprint catches a change")
	cmd.MarkFlagRequired("relay")
}

// receipt reads the receipt, words or digits, from --receipt-file or the
// terminal; never from a flag value, which other users of the machine could
// see.
func (e *env) receipt(o *receiptOptions) (*crypto.Receipt, error) {
	var words string
	if o.receiptFile != "" {
		b, err := os.ReadFile(o.receiptFile)
		if err != nil {
			return nil, fail(ExitKey, "check the --receipt-file path", err, "cannot read the receipt")
		}
		words = string(b)
	} else {
		w, err := readTerminal("receipt (12 words or 45 digits): ")
		if err != nil {
			return nil, fail(ExitKey, "give the receipt with --receipt-file", nil, "a receipt is needed and there is no terminal to ask for it")
		}
		words = w
	}
	r, err := crypto.ParseReceipt(words)
	if err != nil {
		// What is wrong (a count, a word not in the list, a character
		// that is no digit, the checksum), never the receipt itself.
		why := err.Error()
		if errors.Is(err, crypto.ErrReceipt) {
			why = strings.TrimPrefix(why, crypto.ErrReceipt.Error()+": ")
		}
		return nil, fail(ExitKey, why+"; check the 12 words or the 45 digits: one is mistyped, missing or out of order", nil, "that is not a valid receipt")
	}
	return r, nil
}

// mailbox reads the receipt, reaches the relay and lists the receipt's
// mailbox: how check and followup both begin. Call done when finished.
func (e *env) mailbox(o *receiptOptions) (rc *crypto.Receipt, c *client.Client, mb *api.Mailbox, done func(), err error) {
	if rc, err = e.receipt(o); err != nil {
		return nil, nil, nil, nil, err
	}
	if c, done, err = e.relayClient(o.relay, nil); err != nil {
		return nil, nil, nil, nil, err
	}
	if mb, err = c.CheckMailbox(e.ctx, rc.Token()); err != nil {
		done()
		return nil, nil, nil, nil, err
	}
	return rc, c, mb, done, nil
}
