package report

import (
	_ "embed"
	"encoding/json"
)

// labels.json names the statuses and close reasons of the default
// workflow and of the packs in handler/packs, in every language of the
// report: a word it does not list is shown as itself.
//
//go:embed labels.json
var labelsJSON []byte

// labels is labels.json: vocabulary ("statuses", "close_reasons") -> word
// -> language code -> label.
var labels = func() map[string]map[string]map[string]string {
	var m map[string]map[string]map[string]string
	if err := json.Unmarshal(labelsJSON, &m); err != nil {
		panic("handler/report: labels.json: " + err.Error())
	}
	return m
}()

// Label is word's label in lang in vocabulary ("statuses" or
// "close_reasons"), else in English, else the word itself.
func Label(vocabulary, word, lang string) string {
	ls := labels[vocabulary][word]
	if s := ls[lang]; s != "" {
		return s
	}
	if s := ls["en"]; s != "" {
		return s
	}
	return word
}
