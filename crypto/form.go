package crypto

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Form field types.
const (
	FieldText        = "text"        // one line
	FieldLongText    = "longtext"    // several lines
	FieldChoice      = "choice"      // one of the options
	FieldMultiChoice = "multichoice" // any of the options
	FieldDate        = "date"        // YYYY-MM-DD
	FieldFile        = "file"        // attachments
	FieldCategory    = "category"    // the desk's categories; drives routing
)

var fieldTypes = map[string]bool{FieldText: true, FieldLongText: true, FieldChoice: true, FieldMultiChoice: true,
	FieldDate: true, FieldFile: true, FieldCategory: true}

// Form is a desk's submission form. Labels and help are per language code
// ("en", "ar", "fr", …); a page shows them as Text picks them: the
// visitor's language, else the desk's, else English, else any.
type Form struct {
	Fields []Field `json:"fields"`
}

// Field is one question of a form.
type Field struct {
	ID       string            `json:"id"`
	Type     string            `json:"type"`
	Required bool              `json:"required,omitempty"`
	Label    map[string]string `json:"label"`
	Help     map[string]string `json:"help,omitempty"`
	Options  []Option          `json:"options,omitempty"`
}

// Option is one choice of a choice or multichoice field.
type Option struct {
	ID    string            `json:"id"`
	Label map[string]string `json:"label"`
}

var langRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$`)

// ValidLang reports whether s looks like a language code: "en", "ar",
// "fr", "pt-BR".
func ValidLang(s string) bool { return langRE.MatchString(s) }

// checkLongText checks a text map whose texts may be empty and up to 4000
// bytes long: the desk's descriptions.
func checkLongText(what string, m map[string]string) error {
	for lang, s := range m {
		if !ValidLang(lang) {
			return fmt.Errorf("%s: invalid language code %q", what, lang)
		}
		if len(s) > 4000 {
			return fmt.Errorf("%s: text in %q longer than 4000 bytes", what, lang)
		}
	}
	return nil
}

// Text picks what a page in lang shows of a desk text: m[lang], else plain
// (the text in the desk's own language), else m[deskLang], else m["en"],
// else the text of the first code in byte order; empty texts are skipped.
// plain is "" for a text with none (form labels); deskLang "" when the desk
// does not say.
func Text(plain string, m map[string]string, lang, deskLang string) string {
	if s := m[lang]; s != "" {
		return s
	}
	if plain != "" {
		return plain
	}
	for _, l := range []string{deskLang, "en"} {
		if s := m[l]; l != "" && s != "" {
			return s
		}
	}
	codes := make([]string, 0, len(m))
	for k, s := range m {
		if s != "" {
			codes = append(codes, k)
		}
	}
	if len(codes) == 0 {
		return ""
	}
	return m[slices.Min(codes)]
}

func checkText(what string, m map[string]string, required bool) error {
	if required && len(m) == 0 {
		return fmt.Errorf("%s needs a label in at least one language", what)
	}
	for lang, s := range m {
		if !ValidLang(lang) {
			return fmt.Errorf("%s: invalid language code %q", what, lang)
		}
		if len(s) > 2000 || required && s == "" {
			return fmt.Errorf("%s: text in %q must be 1 to 2000 bytes", what, lang)
		}
	}
	return nil
}

// Validate checks a form against the desk it belongs to.
func (f *Form) Validate(hasCategories bool) error {
	if len(f.Fields) == 0 || len(f.Fields) > 50 {
		return errors.New("a form needs 1 to 50 fields")
	}
	seen := map[string]bool{}
	files, cats := 0, 0
	for _, fl := range f.Fields {
		what := fmt.Sprintf("form field %q", fl.ID)
		if !ValidName(fl.ID) || seen[fl.ID] {
			return fmt.Errorf("%s: invalid or repeated id", what)
		}
		seen[fl.ID] = true
		if !fieldTypes[fl.Type] {
			return fmt.Errorf("%s: unknown type %q", what, fl.Type)
		}
		if err := checkText(what, fl.Label, true); err != nil {
			return err
		}
		if err := checkText(what+" help", fl.Help, false); err != nil {
			return err
		}
		switch fl.Type {
		case FieldChoice, FieldMultiChoice:
			if len(fl.Options) == 0 || len(fl.Options) > 100 {
				return fmt.Errorf("%s: a choice needs 1 to 100 options", what)
			}
			opts := map[string]bool{}
			for _, o := range fl.Options {
				if !ValidName(o.ID) || opts[o.ID] {
					return fmt.Errorf("%s: invalid or repeated option %q", what, o.ID)
				}
				opts[o.ID] = true
				if err := checkText(what+" option "+o.ID, o.Label, true); err != nil {
					return err
				}
			}
		default:
			if len(fl.Options) > 0 {
				return fmt.Errorf("%s: only choices have options", what)
			}
		}
		if fl.Type == FieldFile {
			files++
		}
		if fl.Type == FieldCategory {
			cats++
		}
	}
	if files > 1 || cats > 1 {
		return errors.New("a form has at most one file field and one category field")
	}
	if cats == 1 && !hasCategories {
		return errors.New("the form has a category field but the desk has no categories")
	}
	return nil
}
