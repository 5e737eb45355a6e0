package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/media/tus"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// sniffLen is how many of a file's first bytes are kept to sniff its type: what mimetype reads.
const sniffLen = 3072

// progress is what a write has durably stored, ready to be committed to the upload's row.
type progress struct {
	offset    int64
	parts     []Part
	tailKey   *string
	tailSize  int64
	hashState []byte
	head      []byte
}

// errSuperseded is the answer to a request whose upload a newer request took over.
var errSuperseded = fieldsync.Errorf(fieldsync.ECONFLICT, "upload_superseded", "A newer request took this upload over.")

// bodyReader remembers the error a request body failed with (the client went away), which
// io.ReadFull would otherwise fold into io.ErrUnexpectedEOF.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// write appends body, which starts at offset, to the caller's upload. contentLength is the body's
// length, or -1 when unknown (chunked). With ck, the body is all or nothing: it counts only if its
// digest matches. Without, whatever arrives before the client goes away is kept, as the tus core
// protocol asks. It returns the upload as now stored; when the upload is complete, the document
// has been updated (or the completion is left to the cleanup loop, and the error says so).
func (s *Service) write(ctx context.Context, caller *fieldsync.Identity, id uuid.UUID, offset int64, body io.Reader, contentLength int64, ck *tus.Checksum) (*upload, error) {
	u, claim, firstPart, err := s.claimWrite(ctx, caller, id, offset, contentLength)
	if err != nil {
		return u, err
	}
	if u.State != stateReceiving {
		// Everything was received already: a client retrying the last PATCH. Finish if need be.
		if u.State == stateReceived {
			if err := s.finish(ctx, u.ID, claim); err != nil {
				return u, err
			}
		}
		return s.findUpload(ctx, caller, id)
	}
	if contentLength == 0 {
		s.releaseClaim(ctx, id, claim)
		return u, nil
	}

	wrote, err := s.receive(ctx, u, claim, firstPart, body, ck)
	if err != nil {
		s.releaseClaim(ctx, id, claim)
		var fe *fieldsync.Error
		if errors.As(err, &fe) && fe.Code == "unsupported_content_type" {
			if derr := s.discard(ctx, u); derr != nil {
				s.log.Warn("discard refused upload", "upload_id", id, "err", derr)
			}
		}
		return wrote, err
	}
	if wrote.State == stateReceived {
		if err := s.finish(ctx, id, claim); err != nil {
			return wrote, err
		}
		return s.findUpload(ctx, caller, id)
	}
	return wrote, nil
}

// claimWrite checks a write against the upload under its row lock and claims the upload for it,
// reserving the part numbers it may use.
func (s *Service) claimWrite(ctx context.Context, caller *fieldsync.Identity, id uuid.UUID, offset, contentLength int64) (*upload, uuid.UUID, int, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, uuid.Nil, 0, fmt.Errorf("claim upload: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	u, err := scanUpload(tx.QueryRow(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = $1 FOR UPDATE`, id))
	if err != nil || u.UserID != caller.UserID {
		return nil, uuid.Nil, 0, tus.ErrNotFound
	}
	switch {
	case u.expired(s.NowFunc()):
		return nil, uuid.Nil, 0, tus.ErrExpired
	case offset != u.Offset:
		return u, uuid.Nil, 0, &fieldsync.Error{Kind: fieldsync.ECONFLICT, Code: "offset_mismatch",
			Message: fmt.Sprintf("Upload-Offset is %d, but the upload has %d bytes; resume from there.", offset, u.Offset),
			Details: map[string]any{"offset": u.Offset}}
	case contentLength > 0 && offset+contentLength > u.Length:
		return u, uuid.Nil, 0, &fieldsync.Error{Kind: fieldsync.ETOOLARGE, Code: "upload_too_large",
			Message: fmt.Sprintf("The body would take the upload past its Upload-Length of %d bytes.", u.Length)}
	}
	// Enough part numbers for every part this write could store, and one for its trailing object.
	reserve := int((u.TailSize+u.Length-u.Offset)/partSize) + 2
	if u.State != stateReceiving {
		reserve = 0
	}
	if u.NextPart+reserve > 10001 {
		return u, uuid.Nil, 0, fieldsync.Errorf(fieldsync.EINVALID, "upload_too_fragmented",
			"This upload was interrupted too often to go on; start a new one.")
	}
	claim := uuid.New()
	if _, err := tx.Exec(ctx, `UPDATE uploads SET claim = $2, next_part = next_part + $3, updated_at = now() WHERE id = $1`,
		id, claim, reserve); err != nil {
		return nil, uuid.Nil, 0, fmt.Errorf("claim upload: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, uuid.Nil, 0, fmt.Errorf("claim upload: %w", err)
	}
	return u, claim, u.NextPart, nil
}

// releaseClaim lets the next request have the upload without taking it over.
func (s *Service) releaseClaim(ctx context.Context, id, claim uuid.UUID) {
	if _, err := s.db.Exec(context.WithoutCancel(ctx), `UPDATE uploads SET claim = NULL WHERE id = $1 AND claim = $2`, id, claim); err != nil {
		s.log.Warn("release upload claim", "upload_id", id, "err", err)
	}
}

// receive streams body into the store in parts and commits what it stored. With a second part
// buffer free, reading the next part overlaps storing the last (at most one part in flight, so
// a request holds at most two buffers); without, it reads and stores in turn. Either way each
// part's progress is committed in order, once the part is stored.
func (s *Service) receive(ctx context.Context, u *upload, claim uuid.UUID, partNo int, rawBody io.Reader, ck *tus.Checksum) (*upload, error) {
	// A part buffer, bounded in number: the memory of uploads in flight has a ceiling.
	bufp, release, err := s.acquireBuffer(ctx)
	if err != nil {
		return u, err
	}
	defer release()
	bufs := [][]byte{*bufp}
	if u.Length-u.Offset+u.TailSize > partSize {
		// More than one part to go: a second buffer, if one is free now, lets them overlap.
		if second, release2, ok := s.tryBuffer(); ok {
			defer release2()
			bufs = append(bufs, *second)
		}
	}
	cur := 0 // the buffer being read into
	buf := bufs[cur]

	whole := sha256.New()
	if err := whole.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.HashState); err != nil {
		return u, fmt.Errorf("restore hash of upload %s: %w", u.ID, err)
	}
	// The chunk's digest, unless it is the whole file's from its first byte in the same
	// algorithm: then the file's own digest is the chunk's, and every byte is hashed once.
	var chunk hash.Hash
	chunkIsWhole := ck != nil && ck.Algorithm == "sha256" && u.Offset == 0 && u.TailSize == 0
	if ck != nil && !chunkIsWhole {
		chunk = ck.New()
	}
	// The trailing bytes stored by the previous write go first.
	n := int(u.TailSize)
	if u.TailKey != nil {
		sctx, cancel := s.storeCtx(ctx)
		err := s.store.ReadInto(sctx, *u.TailKey, buf[:n])
		cancel()
		if err != nil {
			return u, unavailable(err)
		}
	}

	saved := progress{offset: u.Offset, parts: u.Parts, tailKey: u.TailKey, tailSize: u.TailSize, hashState: u.HashState, head: u.Head}
	head := slices.Clone(u.Head)
	pos := u.Offset
	body := &bodyReader{r: io.LimitReader(rawBody, u.Length-u.Offset)}
	var storeErr error

	// The part being stored, if any, and the progress it completes once stored.
	var inflight chan partStored
	var after progress
	var afterFinal bool
	// land waits for the part in flight and commits its progress (per part when there is no
	// checksum: a crash loses at most the parts not yet stored). A store error is left in
	// storeErr; the error returned ends the request.
	land := func() error {
		if inflight == nil {
			return nil
		}
		res := <-inflight
		inflight = nil
		if res.err != nil {
			storeErr = res.err
			return nil
		}
		next := after
		next.parts = append(slices.Clone(saved.parts), res.part)
		if ck == nil && !afterFinal {
			if _, err := s.commit(ctx, u, claim, next, true); err != nil {
				return err
			}
		}
		saved = next
		return nil
	}
	// A request that ends early still waits for its part in flight: the buffer is not given back
	// while the store reads it.
	defer func() {
		if inflight != nil {
			<-inflight
		}
	}()
	for {
		m, err := io.ReadFull(body, buf[n:])
		if m > 0 {
			data := buf[n : n+m]
			whole.Write(data)
			if chunk != nil {
				chunk.Write(data)
			}
			if pos < sniffLen {
				head = append(head, data[:min(int64(m), sniffLen-pos)]...)
			}
			pos += int64(m)
			n += m
		}
		ended := err != nil
		final := pos == u.Length
		if final && body.err == nil {
			// The upload is whole: anything more is a client's error.
			var one [1]byte
			if k, _ := io.ReadFull(rawBody, one[:]); k > 0 {
				return u, &fieldsync.Error{Kind: fieldsync.ETOOLARGE, Code: "upload_too_large",
					Message: fmt.Sprintf("The body takes the upload past its Upload-Length of %d bytes.", u.Length)}
			}
		}
		if n == len(buf) || (final && n > 0) {
			// The part before goes first: progress is committed in order.
			if err := land(); err != nil {
				return u, err
			}
			if storeErr != nil {
				break
			}
			if ck == nil && !s.stillClaimed(ctx, u.ID, claim) {
				return u, errSuperseded
			}
			state, err := whole.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				return u, err
			}
			after, afterFinal = progress{offset: pos, hashState: state, head: head}, final
			inflight = s.storePart(ctx, u, partNo, buf[:n])
			partNo++
			n = 0
			if len(bufs) == 2 {
				// The next part is read into the other buffer while this one is stored.
				cur = 1 - cur
				buf = bufs[cur]
			} else if err := land(); err != nil {
				return u, err
			}
		}
		if ended {
			break
		}
	}
	if err := land(); err != nil {
		return u, err
	}
	if storeErr != nil {
		n = 0 // what was read after the part that failed is not kept; the client resends it
	}

	if ck != nil {
		switch {
		case body.err != nil:
			return u, fmt.Errorf("read chunk: %w", body.err)
		case storeErr != nil:
			return u, unavailable(storeErr)
		case !bytes.Equal(chunkSum(chunk, whole), ck.Sum):
			return u, &fieldsync.Error{Kind: fieldsync.ECHECKSUM, Code: "checksum_mismatch",
				Message: "The body does not match Upload-Checksum; nothing of it was kept. Send it again."}
		}
	}
	if storeErr == nil && n > 0 {
		// Bytes too few for a part: kept as a trailing object of their own until the next write.
		key := fmt.Sprintf("%stail-%d", tailPrefix(u.ID), partNo)
		sctx, cancel := s.storeCtx(ctx)
		err := s.store.Put(sctx, key, buf[:n], "application/octet-stream")
		cancel()
		if err != nil {
			storeErr = err
		} else {
			state, err := whole.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				return u, err
			}
			saved = progress{offset: pos, parts: saved.parts, tailKey: &key, tailSize: int64(n), hashState: state, head: head}
		}
	}
	oldTail := u.TailKey
	wrote, err := s.commit(ctx, u, claim, saved, saved.offset == u.Length)
	if err != nil {
		return u, err
	}
	if oldTail != nil && (saved.tailKey == nil || *saved.tailKey != *oldTail) {
		sctx, cancel := s.storeCtx(ctx)
		if err := s.store.Remove(sctx, *oldTail); err != nil {
			s.log.Warn("remove trailing object", "upload_id", u.ID, "err", err)
		}
		cancel()
	}
	switch {
	case storeErr != nil:
		return wrote, unavailable(storeErr)
	case body.err != nil:
		return wrote, fmt.Errorf("read body: %w", body.err)
	}
	return wrote, nil
}

// chunkSum returns the chunk's digest: chunk's, or the whole file's when the chunk is the file
// from its first byte (chunk nil).
func chunkSum(chunk, whole hash.Hash) []byte {
	if chunk == nil {
		return whole.Sum(nil)
	}
	return chunk.Sum(nil)
}

// partStored is a part's store, done.
type partStored struct {
	part Part
	err  error
}

// storePart stores data as part n of u's multipart upload in the background; the channel gets
// the outcome.
func (s *Service) storePart(ctx context.Context, u *upload, n int, data []byte) chan partStored {
	done := make(chan partStored, 1)
	go func() {
		sctx, cancel := s.storeCtx(ctx)
		defer cancel()
		p, err := s.store.PutPart(sctx, u.ObjectKey, u.MultipartID, n, data)
		done <- partStored{part: p, err: err}
	}()
	return done
}

// stillClaimed reports whether claim still holds the upload; a failure to tell counts as no.
func (s *Service) stillClaimed(ctx context.Context, id, claim uuid.UUID) bool {
	var held bool
	err := s.db.QueryRow(context.WithoutCancel(ctx), `SELECT claim = $2 FROM uploads WHERE id = $1`, id, claim).Scan(&held)
	return err == nil && held
}

// commit stores next as the upload's progress if claim still holds it. Before storing, it checks
// the sniffed type as soon as enough of the file is known: a file of a type not allowed is
// refused early, and nothing of it is committed. keep says whether the claim stays (more of this
// request follows, or the completion).
func (s *Service) commit(ctx context.Context, u *upload, claim uuid.UUID, next progress, keep bool) (*upload, error) {
	if next.offset == u.Offset && ptrEq(next.tailKey, u.TailKey) && !keep {
		s.releaseClaim(ctx, u.ID, claim)
		return u, nil
	}
	if len(next.head) >= sniffLen || next.offset == u.Length {
		if _, err := sniff(next.head); err != nil {
			return u, err
		}
	}
	state := stateReceiving
	if next.offset == u.Length {
		state = stateReceived
	}
	w, err := scanUpload(s.db.QueryRow(context.WithoutCancel(ctx), `
		UPDATE uploads SET upload_offset = $3, parts = $4, tail_key = $5, tail_size = $6, hash_state = $7, head = $8, state = $9,
			expires_at = $10, updated_at = now(), claim = CASE WHEN $11 THEN claim END
		WHERE id = $1 AND claim = $2
		RETURNING `+uploadColumns,
		u.ID, claim, next.offset, next.parts, next.tailKey, next.tailSize, next.hashState, next.head, state,
		s.NowFunc().Add(s.opts.UploadTTL), keep))
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return u, errSuperseded
		}
		return u, fmt.Errorf("commit upload %s: %w", u.ID, err)
	}
	return w, nil
}

func ptrEq(a, b *string) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
