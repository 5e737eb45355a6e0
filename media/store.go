package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	gosync "sync"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Store is the object store holding document bytes and thumbnails: one bucket.
type Store struct {
	client *minio.Client
	core   minio.Core
	bucket string
	cfg    Config
	// public is the parsed PublicEndpoint (nil: presign with client). presigner, a client for it,
	// is made on first use, once the region is known.
	public    *url.URL
	mu        gosync.Mutex
	presigner *minio.Client
}

// NewStore returns a Store for cfg. It does not contact the store; Ping does. It returns an
// error if an endpoint is malformed.
func NewStore(cfg Config) (*Store, error) {
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.UseSSL,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("object store client for %s: %w", cfg.Endpoint, err)
	}
	s := &Store{client: client, core: minio.Core{Client: client}, bucket: cfg.Bucket, cfg: cfg}
	if cfg.PublicEndpoint != "" {
		if s.public, err = ParsePublicURL(cfg.PublicEndpoint); err != nil {
			return nil, fmt.Errorf("public endpoint: %w", err)
		}
		if s.public.Path != "" {
			return nil, fmt.Errorf("public endpoint %q: an S3 endpoint has no path", cfg.PublicEndpoint)
		}
	}
	return s, nil
}

// presignClient returns the client that signs download URLs: the one for PublicEndpoint when set.
// That client is given the region explicitly (the configured one, or the one the store itself
// reports, asked once), since a client without one would ask the public endpoint: signing must
// never reach out to it.
func (s *Store) presignClient(ctx context.Context) (*minio.Client, error) {
	if s.public == nil {
		return s.client, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.presigner != nil {
		return s.presigner, nil
	}
	region := s.cfg.Region
	if region == "" {
		var err error
		if region, err = s.client.GetBucketLocation(ctx, s.bucket); err != nil {
			return nil, fmt.Errorf("region of bucket %s: %w", s.bucket, err)
		}
		if region == "" {
			region = "us-east-1" // S3's answer for its first region
		}
	}
	c, err := minio.New(s.public.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(s.cfg.AccessKey, s.cfg.SecretKey, ""),
		Secure: s.public.Scheme == "https",
		Region: region,
	})
	if err != nil {
		return nil, fmt.Errorf("object store client for %s: %w", s.public.Host, err)
	}
	s.presigner = c
	return c, nil
}

// Client returns the underlying minio-go client.
func (s *Store) Client() *minio.Client { return s.client }

// Bucket returns the name of the bucket documents are kept in.
func (s *Store) Bucket() string { return s.bucket }

// Ping checks that the store answers and the bucket exists. It returns an EUNAVAILABLE error
// otherwise.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return &fieldsync.Error{Kind: fieldsync.EUNAVAILABLE, Code: "object_store_unavailable",
			Message: fmt.Sprintf("The object store did not answer: %v", err)}
	}
	if !ok {
		return fieldsync.Errorf(fieldsync.EUNAVAILABLE, "object_store_unavailable", "The bucket %q does not exist.", s.bucket)
	}
	return nil
}

// EnsureBucket creates the bucket if it does not exist yet.
func (s *Store) EnsureBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("check bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	if err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
			return nil
		}
		return fmt.Errorf("create bucket %s: %w", s.bucket, err)
	}
	return nil
}

// part is one stored part of a multipart upload.
type part struct {
	N    int    `json:"n"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

// startMultipart begins a multipart upload to key and returns its upload id.
func (s *Store) startMultipart(ctx context.Context, key string) (string, error) {
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, key, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return "", fmt.Errorf("start multipart upload of %s: %w", key, err)
	}
	return id, nil
}

// putPart stores data as part n of the multipart upload. The payload is not signed (its SHA-256
// is not sent): the bytes are hashed once already, for the document, and the store checks each
// part's MD5 for its ETag; signing would hash every byte a second time on the hot path.
func (s *Store) putPart(ctx context.Context, key, uploadID string, n int, data []byte) (part, error) {
	p, err := s.core.PutObjectPart(ctx, s.bucket, key, uploadID, n, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectPartOptions{DisableContentSha256: true})
	if err != nil {
		return part{}, fmt.Errorf("store part %d of %s: %w", n, key, err)
	}
	return part{N: n, ETag: p.ETag, Size: int64(len(data))}, nil
}

// completeMultipart joins parts into the object key, with contentType.
func (s *Store) completeMultipart(ctx context.Context, key, uploadID string, parts []part, contentType string) error {
	complete := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		complete[i] = minio.CompletePart{PartNumber: p.N, ETag: p.ETag}
	}
	_, err := s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, complete, minio.PutObjectOptions{ContentType: contentType})
	if err != nil {
		return fmt.Errorf("complete multipart upload of %s: %w", key, err)
	}
	return nil
}

// abortMultipart ends a multipart upload, freeing its parts. An upload the store no longer knows
// is not an error.
func (s *Store) abortMultipart(ctx context.Context, key, uploadID string) error {
	err := s.core.AbortMultipartUpload(ctx, s.bucket, key, uploadID)
	if err != nil && !isNoSuchUpload(err) {
		return fmt.Errorf("abort multipart upload of %s: %w", key, err)
	}
	return nil
}

// put stores a small object whole.
func (s *Store) put(ctx context.Context, key string, data []byte, contentType string) error {
	_, err := s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: contentType, DisableContentSha256: true})
	if err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

// readInto reads the whole object key, which must be exactly len(buf) bytes, into buf.
func (s *Store) readInto(ctx context.Context, key string, buf []byte) error {
	obj, _, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	defer obj.Close()
	if _, err := io.ReadFull(obj, buf); err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	return nil
}

// open returns the object key for reading, with its size.
func (s *Store) open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	obj, info, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", key, err)
	}
	return obj, info.Size, nil
}

// size returns the size of object key, and false if there is no such object.
func (s *Store) size(ctx context.Context, key string) (int64, bool, error) {
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		if s3Code(err) == "NoSuchKey" {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("stat %s: %w", key, err)
	}
	return info.Size, true, nil
}

// remove deletes objects; a missing one is not an error.
func (s *Store) remove(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		if key == "" {
			continue
		}
		if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("remove %s: %w", key, err)
		}
	}
	return nil
}

// removePrefix deletes every object whose key starts with prefix.
func (s *Store) removePrefix(ctx context.Context, prefix string) error {
	var keys []string
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("list %s: %w", prefix, obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	return s.remove(ctx, keys...)
}

// presign returns a URL that reads object key for ttl, answered with contentType and, when
// fileName is not empty, as an attachment of that name.
func (s *Store) presign(ctx context.Context, key string, ttl time.Duration, contentType, fileName string) (*url.URL, error) {
	params := url.Values{}
	if contentType != "" {
		params.Set("response-content-type", contentType)
	}
	if fileName != "" {
		params.Set("response-content-disposition", contentDisposition(fileName))
	}
	c, err := s.presignClient(ctx)
	if err != nil {
		return nil, err
	}
	u, err := c.PresignedGetObject(ctx, s.bucket, key, ttl, params)
	if err != nil {
		return nil, fmt.Errorf("presign %s: %w", key, err)
	}
	return u, nil
}

func isNoSuchUpload(err error) bool { return s3Code(err) == "NoSuchUpload" }

// s3Code is the S3 error code of err, through any wrapping ("" if it is not an S3 answer).
func s3Code(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code
	}
	return ""
}

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

// domain returns the client's view of the failure.
func (e *unavailableError) domain() *fieldsync.Error {
	return &fieldsync.Error{Kind: fieldsync.EUNAVAILABLE, Code: "object_store_unavailable",
		Message: "The document store is not answering; nothing was lost. Retry the upload later.", RetryAfter: storeRetryAfter}
}
