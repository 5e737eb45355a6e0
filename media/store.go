package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	gosync "sync"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Store is the ObjectStore on S3-compatible storage (minio-go): one bucket holding document bytes
// and thumbnails.
type Store struct {
	client *minio.Client
	core   minio.Core // the multipart calls
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

// StartMultipart begins a multipart upload to key and returns its upload id.
func (s *Store) StartMultipart(ctx context.Context, key string) (string, error) {
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, key, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return "", fmt.Errorf("start multipart upload of %s: %w", key, err)
	}
	return id, nil
}

// PutPart stores data as part n of the multipart upload. The payload is not signed (its SHA-256
// is not sent): the bytes are hashed once already, for the document, and the store checks each
// part's MD5 for its ETag; signing would hash every byte a second time on the hot path.
func (s *Store) PutPart(ctx context.Context, key, uploadID string, n int, data []byte) (Part, error) {
	p, err := s.core.PutObjectPart(ctx, s.bucket, key, uploadID, n, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectPartOptions{DisableContentSha256: true})
	if err != nil {
		return Part{}, fmt.Errorf("store part %d of %s: %w", n, key, err)
	}
	return Part{N: n, ETag: p.ETag, Size: int64(len(data))}, nil
}

// CompleteMultipart joins parts into the object key, with contentType.
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part, contentType string) error {
	complete := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		complete[i] = minio.CompletePart{PartNumber: p.N, ETag: p.ETag}
	}
	_, err := s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, complete, minio.PutObjectOptions{ContentType: contentType})
	if isNoSuchUpload(err) {
		return fmt.Errorf("complete multipart upload of %s: %w", key, ErrMultipartGone)
	}
	if err != nil {
		return fmt.Errorf("complete multipart upload of %s: %w", key, err)
	}
	return nil
}

// AbortMultipart ends a multipart upload, freeing its parts. An upload the store no longer knows
// is not an error.
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	err := s.core.AbortMultipartUpload(ctx, s.bucket, key, uploadID)
	if err != nil && !isNoSuchUpload(err) {
		return fmt.Errorf("abort multipart upload of %s: %w", key, err)
	}
	return nil
}

// Put stores a small object whole.
func (s *Store) Put(ctx context.Context, key string, data []byte, contentType string) error {
	_, err := s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: contentType, DisableContentSha256: true})
	if err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

// ReadInto reads the whole object key, which must be exactly len(buf) bytes, into buf.
func (s *Store) ReadInto(ctx context.Context, key string, buf []byte) error {
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

// Open returns the object key for reading, with its size.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	obj, info, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", key, err)
	}
	return obj, info.Size, nil
}

// Size returns the size of object key, and false if there is no such object.
func (s *Store) Size(ctx context.Context, key string) (int64, bool, error) {
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		if s3Code(err) == "NoSuchKey" {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("stat %s: %w", key, err)
	}
	return info.Size, true, nil
}

// Remove deletes objects; a missing one is not an error.
func (s *Store) Remove(ctx context.Context, keys ...string) error {
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

// RemovePrefix deletes every object whose key starts with prefix.
func (s *Store) RemovePrefix(ctx context.Context, prefix string) error {
	var keys []string
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("list %s: %w", prefix, obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	return s.Remove(ctx, keys...)
}

// Presign returns a URL that reads object key for ttl, answered with contentType and, when
// fileName is not empty, as an attachment of that name.
func (s *Store) Presign(ctx context.Context, key string, ttl time.Duration, contentType, fileName string) (*url.URL, error) {
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

// contentDisposition is an inline Content-Disposition naming fileName (RFC 6266, with the UTF-8
// form for names beyond ASCII).
func contentDisposition(fileName string) string {
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, fileName)
	var enc strings.Builder
	for _, b := range []byte(fileName) {
		if (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || strings.IndexByte("!#$&+-.^_`|~", b) >= 0 {
			enc.WriteByte(b)
		} else {
			fmt.Fprintf(&enc, "%%%02X", b)
		}
	}
	return fmt.Sprintf(`inline; filename="%s"; filename*=UTF-8''%s`, ascii, enc.String())
}

var _ ObjectStore = (*Store)(nil)
