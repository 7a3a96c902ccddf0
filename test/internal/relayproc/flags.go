package relayproc

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

// QuickDefaults gives each flag named in values that value unless the
// command line set it, so that a harness's -quick changes only defaults.
// Call it after fs.Parse.
func QuickDefaults(fs *flag.FlagSet, values map[string]string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range values {
		if set[name] {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("-quick default for -%s: %w", name, err)
		}
	}
	return nil
}

// WriteFigures writes a harness's figures as indented JSON to path, private
// to the user like every file Amana writes.
func WriteFigures(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding figures: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing figures: %w", err)
	}
	return nil
}
