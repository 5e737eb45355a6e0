package media

import (
	"context"
	"fmt"

	"github.com/fieldsync/fieldsync"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Store is the object store holding document bytes and thumbnails: one bucket.
type Store struct {
	client *minio.Client
	bucket string
}

// NewStore returns a Store for cfg. It does not contact the store; Ping does.
func NewStore(cfg Config) (*Store, error) {
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.UseSSL,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("object store client for %s: %w", cfg.Endpoint, err)
	}
	return &Store{client: client, bucket: cfg.Bucket}, nil
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
