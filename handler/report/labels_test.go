package report

import (
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/packs"
)

// TestLabelsCoverPacks: every status and close reason of the default
// workflow and of every pack has a label in every language of the report.
func TestLabelsCoverPacks(t *testing.T) {
	ps, err := packs.List()
	if err != nil {
		t.Fatal(err)
	}
	flows := map[string]crypto.Workflow{"default": crypto.DefaultWorkflow()}
	for _, p := range ps {
		flows[p.ID] = p.Workflow
	}
	if len(flows) < 3 {
		t.Fatalf("%d workflows, want the default and at least two packs", len(flows))
	}
	for name, wf := range flows {
		for voc, words := range map[string][]string{"statuses": wf.Statuses, "close_reasons": wf.CloseReasons} {
			for _, w := range words {
				for lang := range Languages {
					if labels[voc][w][lang] == "" {
						t.Errorf("%s: %s %q has no %s label", name, voc, w, lang)
					}
				}
			}
		}
	}
	if Label("statuses", "closed", "ar") != "مغلق" || Label("statuses", "no-such", "fr") != "no-such" {
		t.Error("Label does not look up, or does not fall back to the word")
	}
}
