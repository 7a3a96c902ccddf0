package relay

import (
	"bytes"
	"context"
	"testing"

	"github.com/amana-relay/amana/relay/client"
)

// BenchmarkUpload measures one large resumable upload through HTTP on
// loopback, as amana submit sends it, with a durable spool.
func BenchmarkUpload(b *testing.B) {
	f := newFixture(b)
	f.publish(f.manifestLimit(2, 1<<30), 200)
	ct := encrypt(b, bytes.Repeat([]byte{1}, 256<<20), f.alice, f.bob)
	c, _ := client.New(f.ts.URL, nil)
	b.SetBytes(int64(len(ct)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Submit(context.Background(), "helpdesk", "incident", bytes.NewReader(ct), int64(len(ct)), nil); err != nil {
			b.Fatal(err)
		}
	}
}
