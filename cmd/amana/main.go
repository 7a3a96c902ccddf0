// Command amana is the handler's and submitter's tool for an Amana relay.
// Run 'amana --help'.
package main

import (
	"os"

	"github.com/amana-relay/amana/cmd/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
