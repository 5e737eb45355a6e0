package media

import (
	"context"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// DownloadURL returns a presigned URL, valid for DownloadTTL, that reads a document's file (or,
// with thumbnail, its thumbnail), for a caller whose scope holds the document: the same rule as
// what syncs to their device. A document the caller cannot see is not found (ENOTFOUND), as is a
// file not uploaded yet or a thumbnail not made (yet); a store that fails is EUNAVAILABLE.
func (s *Service) DownloadURL(ctx context.Context, caller *fieldsync.Identity, docID uuid.UUID, thumbnail bool) (string, error) {
	ok, err := s.engine.CanSee(ctx, caller, sync.TypeDocument, docID)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fieldsync.Errorf(fieldsync.ENOTFOUND, "not_found", "No document %s that you can see.", docID)
	}
	doc, err := s.findDocument(ctx, s.db, docID)
	if err != nil {
		return "", err
	}
	key, contentType, name := doc.ObjectKey, doc.ContentType, doc.FileName
	if thumbnail {
		key, contentType, name = doc.ThumbnailKey, "image/jpeg", ""
		if key == nil {
			return "", fieldsync.Errorf(fieldsync.ENOTFOUND, "no_thumbnail", "The document has no thumbnail (yet).")
		}
	} else if key == nil {
		return "", fieldsync.Errorf(fieldsync.ENOTFOUND, "not_uploaded", "The document's file has not been uploaded yet.")
	}
	sctx, cancel := s.storeCtx(ctx)
	defer cancel()
	u, err := s.store.Presign(sctx, *key, s.opts.DownloadTTL, contentType, name)
	if err != nil {
		s.log.WarnContext(ctx, "presign download", "document_id", docID, "err", err)
		return "", (&unavailableError{err: err}).domain()
	}
	return u.String(), nil
}
