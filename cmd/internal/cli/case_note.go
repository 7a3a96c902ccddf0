package cli

import (
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
)

type caseNoteOptions struct {
	caseFlags
	messageFile string
}

func newCaseNote(e *env) *cobra.Command {
	var o caseNoteOptions
	cmd := &cobra.Command{
		Use:   "note ID --message-file FILE -i KEY",
		Short: "add an internal note to a case",
		Long: `Add an internal note to a case. Notes are for the handlers of the case's category
only: they are encrypted to them alone, never to the submitter and never to the
desk's coordinators, and are never taken back (a later note can correct one).
--message-file - reads the note from standard input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runCaseNote(e, &o, args[0]) },
	}
	o.caseFlags.add(cmd)
	cmd.Flags().StringVar(&o.messageFile, "message-file", "", "file with the note, or - for standard input (required)")
	cmd.MarkFlagRequired("message-file")
	return cmd
}

// readNote reads a note's text and checks it fits in an event.
func readNote(e *env, path string) (string, error) {
	b, err := readMessage(e, path)
	if err != nil {
		return "", err
	}
	if len(b) > crypto.MaxEventText {
		return "", fail(ExitUsage, "split it over several notes, or keep long texts in an encrypted file of the case", nil, "the note is %d bytes; a note is at most %d", len(b), crypto.MaxEventText)
	}
	if !utf8.Valid(b) {
		return "", fail(ExitUsage, "save the file as UTF-8 text", nil, "the note is not UTF-8 text")
	}
	if strings.TrimSpace(string(b)) == "" {
		return "", fail(ExitUsage, "write the note in the file", nil, "the note is empty")
	}
	return string(b), nil
}

func runCaseNote(e *env, o *caseNoteOptions, prefix string) error {
	note, err := readNote(e, o.messageFile)
	if err != nil {
		return err
	}
	c, err := e.openJournalCase(prefix, o.identity, o.relay)
	if err != nil {
		return err
	}
	return e.recorded(c, o.relay, o.json, crypto.Change{Note: note})
}
