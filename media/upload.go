package media

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/media/tus"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// upload is a row of the uploads table: everything known of one resumable upload.
type upload struct {
	ID          uuid.UUID
	DocumentID  uuid.UUID
	UserID      uuid.UUID
	Length      int64
	Offset      int64
	State       string
	ObjectKey   string
	MultipartID string
	Parts       []Part
	NextPart    int
	TailKey     *string
	TailSize    int64
	HashState   []byte
	Head        []byte
	Metadata    map[string]string
	Claim       *uuid.UUID
	ExpiresAt   time.Time
}

// Upload states (the uploads table's state column).
const (
	stateReceiving = "receiving"
	stateReceived  = "received"
	stateCompleted = "completed"
)

const uploadColumns = `id, document_id, user_id, length, upload_offset, state, object_key, multipart_id, parts, next_part,
	tail_key, tail_size, hash_state, head, metadata, claim, expires_at`

func scanUpload(row pgx.Row) (*upload, error) {
	var u upload
	err := row.Scan(&u.ID, &u.DocumentID, &u.UserID, &u.Length, &u.Offset, &u.State, &u.ObjectKey, &u.MultipartID, &u.Parts,
		&u.NextPart, &u.TailKey, &u.TailSize, &u.HashState, &u.Head, &u.Metadata, &u.Claim, &u.ExpiresAt)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// tailPrefix is where an upload's trailing objects are kept, each under a key of its own.
func tailPrefix(id uuid.UUID) string { return "uploads/" + id.String() + "/" }

func (u *upload) expired(now time.Time) bool {
	return u.State != stateCompleted && !now.Before(u.ExpiresAt)
}

// findUpload returns the caller's upload id, or tus.ErrNotFound.
func (s *Service) findUpload(ctx context.Context, caller *fieldsync.Identity, id uuid.UUID) (*upload, error) {
	u, err := scanUpload(s.db.QueryRow(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && u.UserID != caller.UserID) {
		return nil, tus.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read upload %s: %w", id, err)
	}
	return u, nil
}

// document is what the upload server reads of a document.
type document struct {
	ID           uuid.UUID
	BranchID     uuid.UUID
	UploaderID   uuid.UUID
	Status       sync.DocumentStatus
	FileName     string
	ContentType  string
	SizeBytes    *int64
	SHA256       *string
	ObjectKey    *string
	ThumbnailKey *string
	Deleted      bool
}

func (s *Service) findDocument(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, id uuid.UUID) (*document, error) {
	var d document
	err := q.QueryRow(ctx, `SELECT id, branch_id, uploader_id, status, file_name, content_type, size_bytes, sha256, object_key,
		thumbnail_key, deleted_at IS NOT NULL FROM documents WHERE id = $1`, id).
		Scan(&d.ID, &d.BranchID, &d.UploaderID, &d.Status, &d.FileName, &d.ContentType, &d.SizeBytes, &d.SHA256, &d.ObjectKey,
			&d.ThumbnailKey, &d.Deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fieldsync.Errorf(fieldsync.ENOTFOUND, "document_not_found", "No document has id %s.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read document %s: %w", id, err)
	}
	return &d, nil
}

// createUpload starts an upload of length bytes for the document named in md, for its uploader.
func (s *Service) createUpload(ctx context.Context, caller *fieldsync.Identity, length int64, md map[string]string) (*upload, error) {
	docID, err := uuid.Parse(md["document_id"])
	if err != nil {
		return nil, tus.InvalidHeader("Upload-Metadata", "Upload-Metadata must carry document_id, the id of the document the file is for.")
	}
	if v, ok := md["sha256"]; ok && !isSHA256Hex(v) {
		return nil, tus.InvalidHeader("Upload-Metadata", "sha256 in Upload-Metadata must be 64 lowercase hex digits.")
	}
	switch {
	case length == 0:
		return nil, tus.InvalidHeader("Upload-Length", "An empty file is not a document.")
	case length > s.opts.MaxUploadBytes:
		return nil, &fieldsync.Error{Kind: fieldsync.ETOOLARGE, Code: "upload_too_large",
			Message: fmt.Sprintf("A document may be at most %d bytes.", s.opts.MaxUploadBytes), Details: map[string]any{"max_bytes": s.opts.MaxUploadBytes}}
	}
	doc, err := s.findDocument(ctx, s.db, docID)
	if err != nil {
		return nil, err
	}
	switch {
	case doc.Deleted:
		return nil, fieldsync.Errorf(fieldsync.ENOTFOUND, "document_not_found", "No document has id %s.", docID)
	case doc.UploaderID != caller.UserID:
		return nil, fieldsync.Errorf(fieldsync.EFORBIDDEN, "forbidden", "Only the rep who created the document may upload its file.")
	case doc.Status == sync.DocumentApproved:
		return nil, fieldsync.Errorf(fieldsync.ECONFLICT, "document_approved", "The document was approved; its file can no longer change.")
	case doc.Status == sync.DocumentPendingUpload && doc.SizeBytes != nil && *doc.SizeBytes != length:
		return nil, &fieldsync.Error{Kind: fieldsync.EINVALID, Code: "size_mismatch",
			Message: fmt.Sprintf("The document declared %d bytes; Upload-Length says %d.", *doc.SizeBytes, length), Details: map[string]any{"header": "Upload-Length"}}
	}

	id := uuid.New() // random, so upload URLs cannot be guessed
	key := "documents/" + docID.String() + "/" + id.String()
	sctx, cancel := s.storeCtx(ctx)
	defer cancel()
	multipartID, err := s.store.StartMultipart(sctx, key)
	if err != nil {
		return nil, unavailable(err)
	}
	state, err := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, err
	}
	u, err := scanUpload(s.db.QueryRow(ctx, `
		INSERT INTO uploads (id, document_id, user_id, length, object_key, multipart_id, hash_state, metadata, expires_at, device_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING `+uploadColumns,
		id, docID, caller.UserID, length, key, multipartID, state, md, s.NowFunc().Add(s.opts.UploadTTL),
		uuid.NullUUID{UUID: caller.DeviceID, Valid: caller.DeviceID != uuid.Nil}))
	if err != nil {
		actx, cancel := s.storeCtx(ctx)
		defer cancel()
		_ = s.store.AbortMultipart(actx, key, multipartID)
		return nil, fmt.Errorf("create upload: %w", err)
	}
	return u, nil
}

// terminate ends the caller's upload: its stored parts and trailing bytes are removed. A completed
// upload only forgets itself: the document keeps its file.
func (s *Service) terminate(ctx context.Context, caller *fieldsync.Identity, id uuid.UUID) error {
	u, err := s.findUpload(ctx, caller, id)
	if err != nil {
		return err
	}
	if u.State == stateCompleted {
		if _, err := s.db.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete upload %s: %w", id, err)
		}
		return nil
	}
	return s.discard(ctx, u)
}

// AbortDeviceUploads ends every upload the device is still sending (a device reported lost): its
// parts and trailing bytes are removed and the rows deleted, as a DELETE by the client would. An
// upload whose bytes are all in (received or completed) is left to finish: its document is on the
// server, not on the phone. It returns how many were aborted; one the store fails on is left
// expired for the cleanup loop, and the error says so.
func (s *Service) AbortDeviceUploads(ctx context.Context, deviceID uuid.UUID) (int, error) {
	rows, err := s.db.Query(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE device_id = $1 AND state = 'receiving'`, deviceID)
	if err != nil {
		return 0, fmt.Errorf("find uploads of device %s: %w", deviceID, err)
	}
	ups, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*upload, error) { return scanUpload(row) })
	if err != nil {
		return 0, fmt.Errorf("find uploads of device %s: %w", deviceID, err)
	}
	var errs []error
	for _, u := range ups {
		if err := s.discard(ctx, u); err != nil {
			errs = append(errs, err)
		}
	}
	return len(ups) - len(errs), errors.Join(errs...)
}

// discard removes an unfinished upload: its multipart upload is aborted, its trailing objects and
// any object it completed removed, and its row deleted. If the store fails, the row is left
// expired, for the cleanup loop to try again.
func (s *Service) discard(ctx context.Context, u *upload) error {
	sctx, cancel := s.storeCtx(ctx)
	defer cancel()
	err := s.store.AbortMultipart(sctx, u.ObjectKey, u.MultipartID)
	if err == nil {
		err = s.store.RemovePrefix(sctx, tailPrefix(u.ID))
	}
	if err == nil && u.State != stateCompleted {
		// Only this upload ever writes its own key: removing it cannot touch a document's file
		// unless the upload completed, which is excluded above.
		err = s.store.Remove(sctx, u.ObjectKey)
	}
	dctx := context.WithoutCancel(ctx)
	if err != nil {
		if _, dbErr := s.db.Exec(dctx, `UPDATE uploads SET expires_at = LEAST(expires_at, now()), claim = NULL WHERE id = $1`, u.ID); dbErr != nil {
			return fmt.Errorf("mark upload %s for cleanup: %w", u.ID, dbErr)
		}
		return unavailable(err)
	}
	if _, err := s.db.Exec(dctx, `DELETE FROM uploads WHERE id = $1`, u.ID); err != nil {
		return fmt.Errorf("delete upload %s: %w", u.ID, err)
	}
	return nil
}

func isSHA256Hex(v string) bool {
	if len(v) != 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
