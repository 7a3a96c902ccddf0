package crypto

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

// Vectors of attachments without a sha256 (docs/protocol.md §8.7.1): a
// bundle sealed by amana submit in one read, which both readers open and
// whose hashes they compute, and the same omission in items the client did
// not seal, which both refuse.

func writeUnhashedVectors(t *testing.T) {
	in, _ := json.Marshal(map[string]any{
		"report": Report{Desk: "helpdesk", Category: "sea", Language: "en", Submitted: "2026-12-04T04:00:00Z", SealedBy: SealedByClient, Client: ClientCLI,
			Answers: []Answer{{"message", "the recording from the checkpoint"}}},
		"files": []map[string]any{
			{"name": "checkpoint.mp4", "type": "video/mp4", "content_base64": base64.StdEncoding.EncodeToString([]byte("\x00\x00\x00\x18ftypmp42 not really a video")), "unhashed": true},
			{"name": "notes.txt", "type": "text/plain", "content_base64": base64.StdEncoding.EncodeToString([]byte("two files, one hashed\n"))},
		},
	})
	addBundle(t, "bundle-client-unhashed.txt", `a report sealed by amana submit: "client":"cli", the first attachment without its sha256 (sealed in one read; the reader computes it), the second with it`, string(in), "2")

	raw := func(name, desc, expect, js string, content []byte) {
		b := entryBytes(reportName, []byte(js))
		b = append(b, entryBytes(EntryName(1, "x.txt"), content)...)
		b = append(b, make([]byte, 1024)...)
		b = append(b, make([]byte, PaddedSize(int64(len(b)))-int64(len(b)))...)
		v := &vector{}
		v.set("kind", "bundle")
		v.set("description", desc)
		v.set("expect", expect)
		v.body = b
		writeVector(t, "bundle-bad-"+name+".txt", v)
	}
	head := `{"schema":1,"desk":"helpdesk","category":"","language":"","submitted":"2026-12-04T04:00:00Z",`
	att := `"attachments":[{"name":"x.txt","size":5,"type":"text/plain"}],"reply_recipient":"","mailbox":""`
	raw("unhashed-server", "an attachment without its sha256 in a report the relay sealed: only the submitter's client may leave it out", "no_digest",
		head+`"sealed_by":"server","answers":[{"field":"message","value":"hi"}],`+att+`}`, []byte("hello"))
	raw("unhashed-handler", "an attachment without its sha256 in a reply a handler sealed: only the submitter's client may leave it out", "no_digest",
		head+`"sealed_by":"handler","answers":[{"field":"message","value":"hi"}],`+att+`}`, []byte("hello"))
	raw("sha256-empty", `"sha256":"" in a client-sealed report: an absent hash is left out, never empty`, "not_canonical",
		head+`"sealed_by":"client","answers":[],"attachments":[{"name":"x.txt","size":5,"sha256":"","type":"text/plain"}],"reply_recipient":"","mailbox":""}`, []byte("hello"))
}
