package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/riverqueue/river"
)

// processAttempts is how often a processing job is tried (with River's backoff) before it is
// left discarded, visible in River's job table with every attempt's error.
const processAttempts = 10

// ProcessArgs is the job that reads a new document file's EXIF and makes its thumbnail. It is
// queued in the transaction that sets the document uploaded, so it exists exactly when that
// commits, and survives restarts; any replica's workers run it.
type ProcessArgs struct {
	DocumentID uuid.UUID `json:"document_id"`
	// ObjectKey is the file processed: a job for a file since replaced does nothing.
	ObjectKey string `json:"object_key"`
}

// Kind names the job in River's table.
func (ProcessArgs) Kind() string { return "document_process" }

type processWorker struct {
	river.WorkerDefaults[ProcessArgs]
	s *Service
}

// Timeout bounds one attempt: decoding a large photo takes seconds, not minutes.
func (w *processWorker) Timeout(*river.Job[ProcessArgs]) time.Duration { return 2 * time.Minute }

func (w *processWorker) Work(ctx context.Context, job *river.Job[ProcessArgs]) error {
	err := w.s.process(ctx, job.Args)
	if err != nil {
		w.s.log.Warn("document processing failed", "document_id", job.Args.DocumentID, "attempt", job.Attempt, "err", err)
	}
	return err
}

// process reads the file's EXIF into the document (capture time, GPS, dimensions), then stores a
// thumbnail beside the file and records it: two writes through the engine, each a change that
// syncs. Running it again does no harm: same values, same thumbnail key.
func (s *Service) process(ctx context.Context, args ProcessArgs) error {
	doc, err := s.findDocument(ctx, s.db, args.DocumentID)
	if err != nil {
		return err
	}
	if doc.Deleted || doc.ObjectKey == nil || *doc.ObjectKey != args.ObjectKey {
		return nil // deleted, or the file was replaced: its own job handles the new one
	}
	sctx, cancel := s.storeCtx(ctx)
	defer cancel()
	obj, size, err := s.store.open(sctx, args.ObjectKey)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(obj, max(size, 0)+1))
	obj.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", args.ObjectKey, err)
	}

	info, err := readEXIF(data)
	if err != nil && !errors.Is(err, errNoEXIF) {
		return err
	}
	fields := map[string]any{}
	if info.CapturedAt != nil {
		fields["captured_at"] = info.CapturedAt
	}
	if info.Lat != nil {
		fields["gps_lat"], fields["gps_lng"] = *info.Lat, *info.Lng
	}
	w, h, err := imageSize(data, info.Orientation)
	if err != nil {
		// Not decodable as the image its bytes claimed: retrying will not help.
		return river.JobCancel(fmt.Errorf("document %s: %w", doc.ID, err))
	}
	fields["width"], fields["height"] = w, h
	sys := sync.SystemIdentity(doc.BranchID, doc.UploaderID)
	if err := s.updateDocument(ctx, sys, doc.ID, args.ObjectKey, fields); err != nil {
		return err
	}

	thumb, err := thumbnail(data, info.Orientation)
	if err != nil {
		return river.JobCancel(fmt.Errorf("thumbnail of document %s: %w", doc.ID, err))
	}
	key := args.ObjectKey + ".thumb.jpg"
	if err := s.store.put(sctx, key, thumb, "image/jpeg"); err != nil {
		return err
	}
	return s.updateDocument(ctx, sys, doc.ID, args.ObjectKey, map[string]any{"thumbnail_key": key})
}

// updateDocument writes fields of the document as the server, if its file is still objectKey.
func (s *Service) updateDocument(ctx context.Context, sys *fieldsync.Identity, docID uuid.UUID, objectKey string, fields map[string]any) error {
	doc, err := s.findDocument(ctx, s.db, docID)
	if err != nil {
		return err
	}
	if doc.Deleted || doc.ObjectKey == nil || *doc.ObjectKey != objectKey {
		return nil
	}
	m, err := mutation(docID, fields)
	if err != nil {
		return err
	}
	if _, err := s.engine.Command(ctx, sys, m); err != nil {
		return fmt.Errorf("update document %s: %w", docID, err)
	}
	return nil
}
