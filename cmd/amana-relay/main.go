// Command amana-relay is the Amana relay server. Run 'amana-relay --help'.
package main

import (
	"os"

	"github.com/amana-relay/amana/cmd/internal/relaycli"
)

func main() {
	os.Exit(relaycli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
