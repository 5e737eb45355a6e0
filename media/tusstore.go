package media

import (
	"context"
	"io"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/media/tus"
	"github.com/google/uuid"
)

// tusUploads is the service's uploads as the tus handler sees them (tus.Uploads): rows of the
// uploads table and S3 multipart uploads.
type tusUploads struct{ s *Service }

var _ tus.Uploads = tusUploads{}

func (t tusUploads) Create(ctx context.Context, caller *fieldsync.Identity, length int64, md map[string]string) (*tus.Upload, error) {
	u, err := t.s.createUpload(ctx, caller, length, md)
	if err != nil {
		return nil, err
	}
	return u.protocol(), nil
}

func (t tusUploads) Find(ctx context.Context, caller *fieldsync.Identity, id uuid.UUID) (*tus.Upload, error) {
	u, err := t.s.findUpload(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	if u.expired(t.s.NowFunc()) {
		return nil, tus.ErrExpired
	}
	return u.protocol(), nil
}

func (t tusUploads) Write(ctx context.Context, caller *fieldsync.Identity, id uuid.UUID, offset int64, body io.Reader, length int64, ck *tus.Checksum) (*tus.Upload, error) {
	u, err := t.s.write(ctx, caller, id, offset, body, length, ck)
	if u == nil {
		return nil, err
	}
	return u.protocol(), err
}

func (t tusUploads) Terminate(ctx context.Context, caller *fieldsync.Identity, id uuid.UUID) error {
	return t.s.terminate(ctx, caller, id)
}

// protocol is what the tus protocol tells of u.
func (u *upload) protocol() *tus.Upload {
	return &tus.Upload{ID: u.ID, Length: u.Length, Offset: u.Offset, Metadata: u.Metadata, ExpiresAt: u.ExpiresAt,
		Completed: u.State == stateCompleted}
}
