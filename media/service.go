package media

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/internal/jobqueue"
	"github.com/fieldsync/fieldsync/media/tus"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"golang.org/x/sync/semaphore"
)

// Defaults of Options.
const (
	DefaultMaxUploadBytes = 25 << 20
	DefaultUploadTTL      = 72 * time.Hour
	DefaultDownloadTTL    = 5 * time.Minute
	DefaultStoreTimeout   = 30 * time.Second
	DefaultJobQueue       = jobqueue.QueueMedia
	// DefaultUploadsPerUser and DefaultUploadsPerDevice cap the upload requests (PATCH, or a
	// creation with data) one user, and one of their devices, may have in progress at once.
	DefaultUploadsPerUser   = 4
	DefaultUploadsPerDevice = 2
	DefaultBufferedParts    = 64
	DefaultBufferWait       = 10 * time.Second
	DefaultBodyIdleTimeout  = 30 * time.Second
	// DefaultMaxDecodeBytes bounds the memory decoding images for thumbnails takes on a replica,
	// all jobs together: a 12-megapixel photo takes about 70 MB, an 80-megapixel one 250 MB.
	DefaultMaxDecodeBytes = 256 << 20
	// partSize is the size of every S3 part but an upload's last: S3's smallest.
	partSize = 5 << 20
)

// PartSize is partSize, for the load tool: its upload baselines store parts of the same size.
const PartSize = partSize

// JobInserter queues a job in the caller's transaction: River's client.
type JobInserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Options are what a Service needs and its settings. DB, Engine, Store and Jobs are required.
type Options struct {
	DB     *pgxpool.Pool
	Engine *sync.Engine
	Store  ObjectStore
	Jobs   JobInserter
	Log    *slog.Logger
	// MaxUploadBytes is the largest document accepted (25 MiB by default).
	MaxUploadBytes int64
	// UploadTTL is how long an unfinished upload is kept after its last write (72 hours).
	UploadTTL time.Duration
	// DownloadTTL is how long a presigned download URL works (5 minutes).
	DownloadTTL time.Duration
	// StoreTimeout bounds each call to the object store, so that a store that hangs fails the
	// request with a retryable error instead of holding it (30 seconds).
	StoreTimeout time.Duration
	// JobQueue is the River queue of processing jobs ("media").
	JobQueue string
	// MaxBufferedParts bounds the part buffers (5 MiB each) of PATCH requests in flight, and so
	// the memory uploads take; a request beyond waits for a buffer, at most BufferWait (64).
	MaxBufferedParts int64
	// BufferWait is how long a request waits for a part buffer before it is answered 503
	// server_busy with Retry-After: no request waits forever behind others (10 seconds).
	BufferWait time.Duration
	// UploadsPerUser and UploadsPerDevice cap the upload requests in progress on this replica for
	// one user and one device (4 and 2): one user cannot take every part buffer. A request beyond
	// is answered 429 too_many_uploads with Retry-After.
	UploadsPerUser   int
	UploadsPerDevice int
	// BodyIdleTimeout ends an upload request whose body sends nothing for this long: the bytes
	// received are kept (the client resumes from Upload-Offset) and its part buffer is freed for
	// others (30 seconds).
	BodyIdleTimeout time.Duration
	// PublicURL is the server's address as clients reach it (https://sync.example.com), from which
	// upload URLs (the tus Location) are built. Empty: the request's own scheme and Host, with
	// X-Forwarded-Proto and X-Forwarded-Host believed only from TrustedProxies.
	PublicURL string
	// TrustedProxies are the networks of the load balancers whose X-Forwarded-* headers are
	// believed.
	TrustedProxies []*net.IPNet
	// MaxDecodeBytes bounds the memory that decoding images for thumbnails takes, all this
	// replica's processing jobs together (256 MiB). An image that alone would take more gets no
	// thumbnail (processing_error image_too_large); the document stays usable.
	MaxDecodeBytes int64
	// CleanupInterval is how often Run looks for expired and unfinished uploads (1 minute).
	CleanupInterval time.Duration
}

// Service is the documents part of the API: resumable uploads, downloads and processing.
type Service struct {
	db      *pgxpool.Pool
	engine  *sync.Engine
	store   ObjectStore
	jobs    JobInserter
	log     *slog.Logger
	opts    Options
	buffers *semaphore.Weighted
	// bufferedParts counts the part buffers held, for Stats.
	bufferedParts atomic.Int64
	tus           *tus.Handler
	decoder       *decoder
	// NowFunc returns the current time, for tests.
	NowFunc func() time.Time
}

// NewService returns the documents service. It returns an error if a required dependency is
// missing or a setting is out of range.
func NewService(o Options) (*Service, error) {
	if o.DB == nil || o.Engine == nil || o.Store == nil || o.Jobs == nil {
		return nil, fmt.Errorf("media: DB, Engine, Store and Jobs are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxUploadBytes == 0 {
		o.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if o.MaxUploadBytes < 1 || o.MaxUploadBytes > 5<<30 {
		return nil, fmt.Errorf("media: the largest upload must be from 1 byte to 5 GiB, not %d", o.MaxUploadBytes)
	}
	o.UploadTTL = cmp.Or(o.UploadTTL, DefaultUploadTTL)
	o.DownloadTTL = cmp.Or(o.DownloadTTL, DefaultDownloadTTL)
	o.StoreTimeout = cmp.Or(o.StoreTimeout, DefaultStoreTimeout)
	o.JobQueue = cmp.Or(o.JobQueue, DefaultJobQueue)
	o.MaxBufferedParts = cmp.Or(o.MaxBufferedParts, DefaultBufferedParts)
	o.BufferWait = cmp.Or(o.BufferWait, DefaultBufferWait)
	o.UploadsPerUser = cmp.Or(o.UploadsPerUser, DefaultUploadsPerUser)
	o.UploadsPerDevice = cmp.Or(o.UploadsPerDevice, DefaultUploadsPerDevice)
	o.BodyIdleTimeout = cmp.Or(o.BodyIdleTimeout, DefaultBodyIdleTimeout)
	var public *url.URL
	if o.PublicURL != "" {
		var err error
		if public, err = ParsePublicURL(o.PublicURL); err != nil {
			return nil, fmt.Errorf("media: public URL: %w", err)
		}
	}
	if o.MaxDecodeBytes == 0 {
		o.MaxDecodeBytes = DefaultMaxDecodeBytes
	}
	if o.MaxDecodeBytes < 1<<20 {
		return nil, fmt.Errorf("media: the decoding budget must be at least 1 MiB, not %d", o.MaxDecodeBytes)
	}
	o.CleanupInterval = cmp.Or(o.CleanupInterval, time.Minute)
	s := &Service{db: o.DB, engine: o.Engine, store: o.Store, jobs: o.Jobs, log: o.Log, opts: o,
		buffers: semaphore.NewWeighted(o.MaxBufferedParts), decoder: newDecoder(o.MaxDecodeBytes), NowFunc: time.Now}
	s.tus = tus.NewHandler(tusUploads{s}, tus.Options{MaxSize: o.MaxUploadBytes, BodyIdleTimeout: o.BodyIdleTimeout,
		UploadsPerUser: o.UploadsPerUser, UploadsPerDevice: o.UploadsPerDevice, PublicURL: public, TrustedProxies: o.TrustedProxies})
	return s, nil
}

// ParsePublicURL checks a public base URL (FIELDSYNC_PUBLIC_URL, FIELDSYNC_S3_PUBLIC_ENDPOINT):
// http or https, a host, nothing after the path. It returns the URL without a trailing slash.
func ParsePublicURL(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q must start with https:// (or http://)", v)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%q must be a scheme and a host, and at most a path", v)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Stats are the service's figures of the moment, for metrics and tests.
type Stats struct {
	// BufferedParts is the number of part buffers held by requests in progress.
	BufferedParts int64
	// UploadRequests is the number of upload requests (PATCH, creation with data) in progress.
	UploadRequests int
}

// Stats returns the service's figures of the moment.
func (s *Service) Stats() Stats {
	return Stats{BufferedParts: s.bufferedParts.Load(), UploadRequests: s.tus.InFlight()}
}

// ServeTus answers a tus request (package tus): for the uploads collection when uploadID is empty,
// else for one upload. The caller must be authenticated (an Identity on the request's context)
// for everything but OPTIONS. It returns the error to answer, a *fieldsync.Error for a refusal,
// with the protocol's headers set already.
func (s *Service) ServeTus(w http.ResponseWriter, r *http.Request, uploadID string) error {
	return s.tus.Serve(w, r, uploadID)
}

// RegisterWorkers adds the service's job workers (document processing) to workers.
func (s *Service) RegisterWorkers(workers *river.Workers) {
	river.AddWorker(workers, &processWorker{s: s})
}

// Run finishes uploads whose completion was interrupted and removes expired ones (aborting their
// S3 multipart uploads), every CleanupInterval until ctx ends. It returns nil when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	tick := time.NewTicker(s.opts.CleanupInterval)
	defer tick.Stop()
	for {
		if err := s.Cleanup(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("upload cleanup", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// storeCtx bounds one call to the object store. Its parent outlives the request: work that must
// finish after the phone drops (storing what arrived, completing) is not cut short by it.
func (s *Service) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.opts.StoreTimeout)
}
