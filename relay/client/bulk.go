package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/amana-relay/amana/relay/api"
)

// ErrBulkAnswer: a bulk answer does not follow its format, or lists other
// submissions, or other sizes, than were asked.
var ErrBulkAnswer = errors.New("the relay's bulk answer is malformed")

// Bulk downloads the submissions ids names (at most api.BulkMaxItems, each
// of at most api.BulkMaxItem bytes as sizes says, all together at most
// api.BulkMaxBytes) in one signed request (POST /api/v1/bulk), calling each
// for every one the relay sends, in order, with a reader of exactly its
// bytes; each must not keep the reader. It returns the IDs the relay did
// not send. An answer cut short fails with a *NetError, after each was
// called for the submissions that arrived whole. A relay from before the
// route answers 404 (AckManyUnsupported says so).
func (c *Client) Bulk(ctx context.Context, ids []string, sizes []int64, each func(i int, body io.Reader) error) (missing []string, err error) {
	if len(ids) == 0 || len(ids) > api.BulkMaxItems || len(sizes) != len(ids) {
		return nil, fmt.Errorf("bulk download of %d submissions: 1 to %d, each with its size", len(ids), api.BulkMaxItems)
	}
	body, err := json.Marshal(api.AckBatch{IDs: ids})
	if err != nil {
		return nil, err
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	var resp *http.Response
	err = c.whenNotBusy(ctx, func() error {
		var err error
		resp, err = c.do(ctx, "POST", "/bulk", hdr, body, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readBulk(resp.Body, ids, sizes, each)
}

// readBulk reads a bulk answer (api.BulkMagic and its frames) for ids,
// whose sizes the inbox announced: each frame must be for the next ID
// asked, of its announced size, and the answer must end with "end". A
// header line is read up to 80 bytes, and a body through a reader of
// exactly its size, so that nothing a relay sends is held whole.
func readBulk(r io.Reader, ids []string, sizes []int64, each func(i int, body io.Reader) error) (missing []string, err error) {
	br := bufio.NewReaderSize(r, 4096)
	line := func() ([]byte, error) {
		l, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(l) > 80 {
			return nil, fmt.Errorf("%w: a header line is too long", ErrBulkAnswer)
		}
		if err != nil {
			return nil, &NetError{fmt.Errorf("reading the bulk answer: %w", err)}
		}
		return l[:len(l)-1], nil
	}
	l, err := line()
	if err != nil {
		return nil, err
	}
	if string(l)+"\n" != api.BulkMagic {
		return nil, fmt.Errorf("%w: it does not start with %q", ErrBulkAnswer, api.BulkMagic[:len(api.BulkMagic)-1])
	}
	for i, id := range ids {
		l, err := line()
		if err != nil {
			return missing, err
		}
		gotID, rest, ok := bytes.Cut(l, []byte(" "))
		if !ok || string(gotID) != id {
			return missing, fmt.Errorf("%w: item %d is not the one asked", ErrBulkAnswer, i)
		}
		if string(rest) == "-" {
			missing = append(missing, id)
			continue
		}
		n, err := strconv.ParseInt(string(rest), 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != string(rest) || n != sizes[i] || n < 0 || n > api.BulkMaxItem {
			return missing, fmt.Errorf("%w: item %d has not the size announced", ErrBulkAnswer, i)
		}
		lr := &io.LimitedReader{R: br, N: n}
		cerr := each(i, lr)
		if _, err := io.Copy(io.Discard, lr); err != nil {
			return missing, &NetError{fmt.Errorf("reading the bulk answer: %w", err)}
		}
		if lr.N > 0 {
			return missing, &NetError{fmt.Errorf("reading the bulk answer: %w", io.ErrUnexpectedEOF)}
		}
		if cerr != nil {
			return missing, cerr
		}
	}
	l, err = line()
	if err != nil {
		return missing, err
	}
	if string(l) != "end" {
		return missing, fmt.Errorf("%w: it does not end where it should", ErrBulkAnswer)
	}
	return missing, nil
}
