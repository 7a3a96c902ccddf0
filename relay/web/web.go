// Package web holds what the relay's submitter pages are made of: the
// HTML templates, the message catalogues (one JSON file per language, so a
// translator adds a language without touching code), the stylesheet and the
// browser client bundle built from js/ (make web). It holds no logic of
// its own besides loading them; package relay serves them.
package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed i18n/*.json templates/*.html static
var files embed.FS

// Static is the tree served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err)
	}
	return sub
}

// Templates is the tree of HTML templates.
func Templates() fs.FS {
	sub, err := fs.Sub(files, "templates")
	if err != nil {
		panic(err)
	}
	return sub
}

// Catalog is one language's messages.
type Catalog struct {
	Lang string
	Msgs map[string]string
}

// T returns the message for key, with {name} placeholders replaced by the
// values given as name, value pairs.
func (c *Catalog) T(key string, pairs ...string) string {
	s, ok := c.Msgs[key]
	if !ok {
		return key
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		s = strings.ReplaceAll(s, "{"+pairs[i]+"}", pairs[i+1])
	}
	return s
}

// Dir is "rtl" or "ltr".
func (c *Catalog) Dir() string {
	if c.Msgs["dir"] == "rtl" {
		return "rtl"
	}
	return "ltr"
}

// Catalogs loads every catalogue, checking each has every key English has.
func Catalogs() (map[string]*Catalog, []string, error) {
	entries, err := fs.ReadDir(files, "i18n")
	if err != nil {
		return nil, nil, err
	}
	out := map[string]*Catalog{}
	var langs []string
	for _, e := range entries {
		lang := strings.TrimSuffix(e.Name(), ".json")
		b, err := files.ReadFile(path.Join("i18n", e.Name()))
		if err != nil {
			return nil, nil, err
		}
		c := &Catalog{Lang: lang}
		if err := json.Unmarshal(b, &c.Msgs); err != nil {
			return nil, nil, fmt.Errorf("catalogue %s: %w", e.Name(), err)
		}
		out[lang] = c
		langs = append(langs, lang)
	}
	en, ok := out["en"]
	if !ok {
		return nil, nil, fmt.Errorf("no English catalogue")
	}
	for _, c := range out {
		for k := range en.Msgs {
			if _, ok := c.Msgs[k]; !ok {
				return nil, nil, fmt.Errorf("catalogue %s lacks %q", c.Lang, k)
			}
		}
	}
	sort.Strings(langs)
	return out, langs, nil
}
