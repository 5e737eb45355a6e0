package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/jobqueue"
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

// processTimeout bounds one attempt. The largest image decoded (MaxDecodeBytes, maxPixels) takes a
// few seconds. River rescues a running job only after its kind's timeout, so it stays below
// jobqueue.RescueAfter: a job whose replica died then runs again elsewhere within a minute (see
// package jobqueue).
const processTimeout = jobqueue.Timeout

// Timeout bounds one attempt of the job.
func (w *processWorker) Timeout(*river.Job[ProcessArgs]) time.Duration { return processTimeout }

// NextRetry runs an attempt given back by River's rescuer (its replica died) again at once; any
// other failure waits River's backoff.
func (w *processWorker) NextRetry(job *river.Job[ProcessArgs]) time.Time {
	if now := time.Now(); jobqueue.Rescued(job.JobRow, now) {
		return now
	}
	return time.Time{}
}

func (w *processWorker) Work(ctx context.Context, job *river.Job[ProcessArgs]) error {
	err := w.s.process(ctx, job.Args)
	if err != nil {
		w.s.log.Warn("document processing failed", "document_id", job.Args.DocumentID, "attempt", job.Attempt, "err", err)
	}
	return err
}

// process reads the file's EXIF into the document (capture time, GPS, dimensions), then stores a
// thumbnail beside the file and records it: two writes through the engine, each a change that
// syncs. An image it will not decode (too large for the memory budget, or not decodable) gets no
// thumbnail and the reason in processing_error instead; the document stays usable. Running it
// again does no harm: same values, same thumbnail key.
func (s *Service) process(ctx context.Context, args ProcessArgs) error {
	doc, err := s.findDocument(ctx, s.db, args.DocumentID)
	if err != nil {
		return err
	}
	if doc.Deleted || doc.ObjectKey == nil || *doc.ObjectKey != args.ObjectKey {
		return nil // deleted, or the file was replaced: its own job handles the new one
	}
	// Unlike an upload's, the job's store calls end with the job's timeout: an attempt that
	// outlived it would be taken for a dead replica's and run twice.
	sctx, cancel := context.WithTimeout(ctx, s.opts.StoreTimeout)
	defer cancel()
	obj, size, err := s.store.Open(sctx, args.ObjectKey)
	if err != nil {
		return err
	}
	// The store gave the size: one buffer of it, not one grown by copies.
	data := make([]byte, max(size, 0))
	_, err = io.ReadFull(obj, data)
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
	h, headerErr := readHeader(data)
	if headerErr == nil && h.width <= maxSide && h.height <= maxSide {
		fields["width"], fields["height"] = h.size(info.Orientation)
	}
	sys := sync.SystemIdentity(doc.BranchID, doc.UploaderID)
	if len(fields) > 0 {
		if err := s.updateDocument(ctx, sys, doc.ID, args.ObjectKey, fields); err != nil {
			return err
		}
	}

	thumb, err := s.decoder.thumbnail(ctx, data, info.Orientation)
	var refused *refusal
	if errors.As(err, &refused) {
		// Retrying would not help: the document keeps its file, without a thumbnail, and says why.
		s.log.Warn("no thumbnail for document", "document_id", doc.ID, "err", err)
		return s.updateDocument(ctx, sys, doc.ID, args.ObjectKey, map[string]any{"processing_error": refused.reason})
	}
	if err != nil {
		return fmt.Errorf("thumbnail of document %s: %w", doc.ID, err)
	}
	key := args.ObjectKey + ".thumb.jpg"
	if err := s.store.Put(sctx, key, thumb, "image/jpeg"); err != nil {
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
