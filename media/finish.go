package media

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// finish completes an upload whose every byte is stored, for the request (or cleanup loop) whose
// claim holds it: it checks the file, completes the multipart upload to the server's key and, in
// one transaction, sets the document uploaded through the sync engine and queues its processing.
// A check that fails refuses the upload for good: its bytes are removed and the document is left
// as it was. A failure of the store or the database leaves the upload received, for the next
// attempt (a retried PATCH, or the cleanup loop). The same bytes uploaded again for a document
// that has them are not stored twice.
func (s *Service) finish(ctx context.Context, id, claim uuid.UUID) error {
	ctx = context.WithoutCancel(ctx) // the phone may be gone; the completion goes on
	u, err := scanUpload(s.db.QueryRow(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = $1`, id))
	if err != nil {
		return fmt.Errorf("read upload %s: %w", id, err)
	}
	if u.State == stateCompleted {
		return nil
	}
	if u.Claim == nil || *u.Claim != claim {
		return errSuperseded
	}
	err = s.complete(ctx, u, claim)
	var fe *fieldsync.Error
	var ue *unavailableError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ue):
		s.releaseClaim(ctx, id, claim)
		return err
	case errors.As(err, &fe) && fe != errSuperseded:
		// Refused: the check's answer is final.
		if derr := s.discard(ctx, u); derr != nil {
			s.log.Warn("discard refused upload", "upload_id", id, "err", derr)
		}
		return err
	default:
		s.releaseClaim(ctx, id, claim)
		return err
	}
}

func (s *Service) complete(ctx context.Context, u *upload, claim uuid.UUID) error {
	if u.Length > s.opts.MaxUploadBytes {
		return &fieldsync.Error{Kind: fieldsync.ETOOLARGE, Code: "upload_too_large",
			Message: fmt.Sprintf("A document may be at most %d bytes.", s.opts.MaxUploadBytes)}
	}
	contentType, err := sniff(u.Head)
	if err != nil {
		return err
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.HashState); err != nil {
		return fmt.Errorf("restore hash of upload %s: %w", u.ID, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))

	doc, err := s.findDocument(ctx, s.db, u.DocumentID)
	if err != nil {
		return err
	}
	declared := u.Metadata["sha256"]
	if declared == "" && doc.Status == sync.DocumentPendingUpload && doc.SHA256 != nil {
		declared = *doc.SHA256
	}
	sameBytes := doc.ObjectKey != nil && doc.SHA256 != nil && *doc.SHA256 == sum
	switch {
	case doc.Deleted:
		return fieldsync.Errorf(fieldsync.EGONE, "document_deleted", "The document was deleted; its upload was dropped.")
	case declared != "" && declared != sum:
		return &fieldsync.Error{Kind: fieldsync.EINVALID, Code: "sha256_mismatch",
			Message: "The file's SHA-256 is not the one the document declared; it was not kept.", Details: map[string]any{"sha256": sum}}
	case !sameBytes && (doc.Status == sync.DocumentUploaded || doc.Status == sync.DocumentApproved):
		return fieldsync.Errorf(fieldsync.ECONFLICT, "document_already_uploaded",
			"The document has another file already; only a pending or rejected document takes a new one.")
	}

	objectKey := u.ObjectKey
	sctx, cancel := s.storeCtx(ctx)
	defer cancel()
	if sameBytes {
		// Stored already: keep the document's object, drop this copy.
		objectKey = *doc.ObjectKey
		if err := s.store.AbortMultipart(sctx, u.ObjectKey, u.MultipartID); err != nil {
			return unavailable(err)
		}
	} else if err := s.store.CompleteMultipart(sctx, u.ObjectKey, u.MultipartID, u.Parts, contentType); err != nil {
		if !errors.Is(err, ErrMultipartGone) {
			return unavailable(err)
		}
		// Completed by an attempt that died before recording it, if the object is whole.
		size, ok, serr := s.store.Size(sctx, u.ObjectKey)
		if serr != nil {
			return unavailable(serr)
		}
		if !ok || size != u.Length {
			return fmt.Errorf("upload %s: the multipart upload is gone and the object is not whole", u.ID)
		}
	}

	now := s.NowFunc().UTC()
	fields := map[string]any{}
	if !sameBytes {
		fields = map[string]any{"status": sync.DocumentUploaded, "object_key": objectKey, "size_bytes": u.Length, "content_type": contentType,
			"sha256": sum, "uploaded_at": now, "thumbnail_key": nil, "width": nil, "height": nil, "captured_at": nil, "gps_lat": nil, "gps_lng": nil, "processing_error": ""}
		if doc.FileName == "" {
			if name := sync.CleanFileName(u.Metadata["filename"]); name != "" {
				fields["file_name"] = name
			}
		}
	}
	if doc.Status == sync.DocumentRejected {
		// A new file for a rejected document goes back to review.
		fields["status"], fields["uploaded_at"], fields["review_note"] = sync.DocumentUploaded, now, ""
	}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE uploads SET state = 'completed', completed_at = now(), expires_at = $3, claim = NULL, updated_at = now()
			WHERE id = $1 AND claim = $2 AND state = 'received'`, u.ID, claim, now.Add(s.opts.UploadTTL))
		if err != nil {
			return fmt.Errorf("complete upload %s: %w", u.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return errSuperseded
		}
		if len(fields) == 0 {
			return nil
		}
		m, err := mutation(doc.ID, fields)
		if err != nil {
			return err
		}
		if _, err := s.engine.ApplyTx(ctx, tx, sync.SystemIdentity(doc.BranchID, u.UserID), m); err != nil {
			return fmt.Errorf("set document %s uploaded: %w", doc.ID, err)
		}
		if !sameBytes && processable(contentType) {
			if _, err := s.jobs.InsertTx(ctx, tx, ProcessArgs{DocumentID: doc.ID, ObjectKey: objectKey},
				&river.InsertOpts{Queue: s.opts.JobQueue, MaxAttempts: processAttempts}); err != nil {
				return fmt.Errorf("queue processing of document %s: %w", doc.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		var fe *fieldsync.Error
		if errors.As(err, &fe) && !sameBytes {
			// The document refused the file (it changed meanwhile): the object goes too.
			if rerr := s.store.Remove(sctx, u.ObjectKey); rerr != nil {
				s.log.Warn("remove refused object", "upload_id", u.ID, "err", rerr)
			}
		}
		return err
	}
	s.dropOtherUploads(ctx, u)
	// Leftovers: trailing objects, and the file (and thumbnail) this one replaced.
	leftovers := []string{}
	if !sameBytes && doc.ObjectKey != nil {
		leftovers = append(leftovers, *doc.ObjectKey)
		if doc.ThumbnailKey != nil {
			leftovers = append(leftovers, *doc.ThumbnailKey)
		}
	}
	if err := s.store.RemovePrefix(sctx, tailPrefix(u.ID)); err != nil {
		s.log.Warn("remove trailing objects", "upload_id", u.ID, "err", err)
	}
	if err := s.store.Remove(sctx, leftovers...); err != nil {
		s.log.Warn("remove replaced file", "document_id", doc.ID, "err", err)
	}
	s.log.Info("document uploaded", "document_id", doc.ID, "upload_id", u.ID, "bytes", u.Length, "content_type", contentType, "same_bytes", sameBytes)
	return nil
}

// dropOtherUploads discards the document's other unfinished uploads once u completed: a client
// whose creation answer was lost creates the upload again, and the first would otherwise hold its
// multipart upload until it expired. An upload a request is writing (claimed) is left to that
// request: its completion will find the document has its file. A failure is logged; the cleanup
// loop removes what is left when it expires.
func (s *Service) dropOtherUploads(ctx context.Context, u *upload) {
	rows, err := s.db.Query(ctx, `UPDATE uploads SET claim = $3, updated_at = now()
		WHERE document_id = $1 AND id <> $2 AND state = 'receiving' AND claim IS NULL
		RETURNING `+uploadColumns, u.DocumentID, u.ID, uuid.New())
	if err != nil {
		s.log.Warn("find the document's other uploads", "document_id", u.DocumentID, "err", err)
		return
	}
	others, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*upload, error) { return scanUpload(r) })
	if err != nil {
		s.log.Warn("find the document's other uploads", "document_id", u.DocumentID, "err", err)
		return
	}
	for _, o := range others {
		if err := s.discard(ctx, o); err != nil {
			s.log.Warn("discard the document's other upload", "upload_id", o.ID, "err", err)
			continue
		}
		s.log.Info("unfinished upload dropped: the document has its file", "upload_id", o.ID, "document_id", u.DocumentID)
	}
}

// mutation builds the server's update of a document.
func mutation(docID uuid.UUID, fields map[string]any) (sync.Mutation, error) {
	m := sync.Mutation{Type: sync.TypeDocument, Op: "update", EntityID: docID, Fields: make(map[string]json.RawMessage, len(fields))}
	for name, v := range fields {
		data, err := json.Marshal(v)
		if err != nil {
			return m, fmt.Errorf("encode %s: %w", name, err)
		}
		m.Fields[name] = data
	}
	return m, nil
}

// processable reports whether processing (EXIF, thumbnail) applies to a content type.
func processable(contentType string) bool {
	return contentType == "image/jpeg" || contentType == "image/png"
}

// Cleanup finishes uploads whose completion was interrupted (the store or the database failed,
// or the replica died) and removes expired unfinished uploads with their S3 multipart uploads and
// trailing objects; completed uploads are forgotten once expired. Any replica may run it at any
// time. It returns the first failure, after trying everything.
func (s *Service) Cleanup(ctx context.Context) error {
	var first error
	note := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	// A received upload whose claim is older than a completion could take was left behind.
	stale := 3 * s.opts.StoreTimeout
	rows, err := s.db.Query(ctx, `SELECT id FROM uploads WHERE state = 'received' AND (claim IS NULL OR updated_at < now() - $1::interval)
		ORDER BY updated_at LIMIT 50`, stale)
	if err != nil {
		return fmt.Errorf("find unfinished uploads: %w", err)
	}
	received, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("find unfinished uploads: %w", err)
	}
	for _, id := range received {
		claim := uuid.New()
		tag, err := s.db.Exec(ctx, `UPDATE uploads SET claim = $2, updated_at = now()
			WHERE id = $1 AND state = 'received' AND (claim IS NULL OR updated_at < now() - $3::interval)`, id, claim, stale)
		if err != nil {
			note(fmt.Errorf("claim upload %s: %w", id, err))
			continue
		}
		if tag.RowsAffected() == 1 {
			if err := s.finish(ctx, id, claim); err != nil {
				s.log.Warn("finish upload", "upload_id", id, "err", err)
				note(err)
			}
		}
	}

	rows, err = s.db.Query(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE expires_at <= $1 ORDER BY expires_at LIMIT 100`, s.NowFunc())
	if err != nil {
		return fmt.Errorf("find expired uploads: %w", err)
	}
	expired, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*upload, error) { return scanUpload(r) })
	if err != nil {
		return fmt.Errorf("find expired uploads: %w", err)
	}
	for _, u := range expired {
		if u.State == stateCompleted {
			_, err := s.db.Exec(ctx, `DELETE FROM uploads WHERE id = $1 AND state = 'completed'`, u.ID)
			note(err)
			continue
		}
		if u.State == stateReceived {
			continue // finished above, or refused there
		}
		if err := s.discard(ctx, u); err != nil {
			note(err)
			continue
		}
		s.log.Info("expired upload removed", "upload_id", u.ID, "document_id", u.DocumentID, "offset", u.Offset, "length", u.Length)
	}
	return first
}
