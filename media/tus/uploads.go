package tus

import (
	"context"
	"hash"
	"io"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
)

// Uploads is what the protocol handler needs of the uploads' state, wherever it is kept (package
// media: PostgreSQL rows and S3 multipart uploads). Every method acts for caller only: an upload
// of someone else is ErrNotFound. Refusals are *fieldsync.Error values; anything else is a fault.
type Uploads interface {
	// Create starts an upload of length bytes described by metadata (Upload-Metadata, decoded).
	Create(ctx context.Context, caller *fieldsync.Identity, length int64, metadata map[string]string) (*Upload, error)
	// Find returns an upload, ErrNotFound, or ErrExpired for an unfinished upload past its time.
	Find(ctx context.Context, caller *fieldsync.Identity, id uuid.UUID) (*Upload, error)
	// Write appends body, which starts at offset and is length bytes long (-1: unknown), to an
	// upload. With ck the body counts only whole and matching it; without, whatever arrives is
	// kept. It returns the upload as now stored, also with an error when it is known (an offset
	// conflict, a body cut short), so that the answer can say where to resume.
	Write(ctx context.Context, caller *fieldsync.Identity, id uuid.UUID, offset int64, body io.Reader, length int64, ck *Checksum) (*Upload, error)
	// Terminate ends an upload and removes what it stored.
	Terminate(ctx context.Context, caller *fieldsync.Identity, id uuid.UUID) error
}

// Upload is what the protocol tells of one upload.
type Upload struct {
	ID        uuid.UUID
	Length    int64
	Offset    int64
	Metadata  map[string]string
	ExpiresAt time.Time
	// Completed is set once the upload is whole and its file delivered: it no longer expires.
	Completed bool
}

// Checksum is a parsed Upload-Checksum: the algorithm, a hash of it, and the digest the body
// must have.
type Checksum struct {
	Algorithm string
	New       func() hash.Hash
	Sum       []byte
}

// The protocol's answers about one upload.
var (
	// ErrNotFound is the answer for an upload that does not exist or is not the caller's: the two
	// are not told apart, so upload ids cannot be probed.
	ErrNotFound = fieldsync.Errorf(fieldsync.ENOTFOUND, "upload_not_found", "There is no such upload.")
	// ErrExpired is the answer for an unfinished upload past its Upload-Expires.
	ErrExpired = fieldsync.Errorf(fieldsync.EGONE, "upload_expired", "The upload expired; start a new one.")
)
