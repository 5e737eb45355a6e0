package media

import (
	"context"
	"errors"
	"io"
	"net/url"
	"time"

	"github.com/fieldsync/fieldsync"
)

// ObjectStore is what uploads, downloads and processing need of the object store (Store: S3 through
// minio-go). Keys are the server's; a failure is a plain error, which the upload server shows a
// client as 503 object_store_unavailable (unavailable).
type ObjectStore interface {
	// StartMultipart begins a multipart upload to key and returns its upload id.
	StartMultipart(ctx context.Context, key string) (string, error)
	// PutPart stores data as part n of the multipart upload.
	PutPart(ctx context.Context, key, uploadID string, n int, data []byte) (Part, error)
	// CompleteMultipart joins parts into the object key, with contentType. It fails with
	// ErrMultipartGone if the store no longer knows the multipart upload.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part, contentType string) error
	// AbortMultipart ends a multipart upload, freeing its parts; one the store no longer knows is
	// not an error.
	AbortMultipart(ctx context.Context, key, uploadID string) error
	// Put stores a small object whole.
	Put(ctx context.Context, key string, data []byte, contentType string) error
	// ReadInto reads the whole object key, which must be exactly len(buf) bytes, into buf.
	ReadInto(ctx context.Context, key string, buf []byte) error
	// Open returns the object key for reading, with its size.
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
	// Size returns the size of object key, and false if there is no such object.
	Size(ctx context.Context, key string) (int64, bool, error)
	// Remove deletes objects; a missing one is not an error.
	Remove(ctx context.Context, keys ...string) error
	// RemovePrefix deletes every object whose key starts with prefix.
	RemovePrefix(ctx context.Context, prefix string) error
	// Presign returns a URL that reads object key for ttl, answered with contentType and, when
	// fileName is not empty, as an attachment of that name.
	Presign(ctx context.Context, key string, ttl time.Duration, contentType, fileName string) (*url.URL, error)
}

// Part is one stored part of a multipart upload.
type Part struct {
	N    int    `json:"n"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

// ErrMultipartGone is what completing a multipart upload the store no longer knows fails with
// (completed or aborted already).
var ErrMultipartGone = errors.New("no such multipart upload")

// storeRetryAfter is what a client is told to wait when the object store fails.
const storeRetryAfter = 10 * time.Second

// unavailable wraps a failure of the object store as the retryable error a client is shown. A
// request the client itself ended is left as it is.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var fe *fieldsync.Error
	if errors.As(err, &fe) {
		return err
	}
	return &unavailableError{err: err}
}

// unavailableError is an object store failure: 503 with Retry-After for the client, the cause
// for the log.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// As lets errors.As find the client's view of the failure (a *fieldsync.Error) while the error
// keeps its cause for the log.
func (e *unavailableError) As(target any) bool {
	if p, ok := target.(**fieldsync.Error); ok {
		*p = e.domain()
		return true
	}
	return false
}

// domain returns the client's view of the failure.
func (e *unavailableError) domain() *fieldsync.Error {
	return &fieldsync.Error{Kind: fieldsync.EUNAVAILABLE, Code: "object_store_unavailable",
		Message: "The document store is not answering; nothing was lost. Retry the upload later.", RetryAfter: storeRetryAfter}
}
