package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/fieldsync/fieldsync/media"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/s3store"
	xslog "golang.org/x/exp/slog" // tusd's logger
)

// tusdServer is tusd v2, the reference tus server, with its S3 store (the AWS SDK's client) on
// the run's object store and bucket: the upload phase's other baseline. It runs in this process,
// on a loopback port, at /v1/uploads/ as our server's tus endpoint is, so that the same client
// code uploads to both.
type tusdServer struct {
	URL string
	srv *http.Server
}

// startTusd serves tusd over cfg's store. Its objects go under bench-tusd/, its parts are
// partSize like ours, and everything else is tusd's default (ten parts stored at once, the
// SDK's payload checksums).
func startTusd(cfg media.Config, partSize int64) (*tusdServer, error) {
	scheme := "http"
	if cfg.UseSSL {
		scheme = "https"
	}
	client := s3.New(s3.Options{
		Region:       cmp.Or(cfg.Region, "us-east-1"),
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
		BaseEndpoint: aws.String(scheme + "://" + cfg.Endpoint),
		UsePathStyle: true,
	})
	store := s3store.New(cfg.Bucket, client)
	store.ObjectPrefix = "bench-tusd/"
	store.MinPartSize, store.PreferredPartSize = partSize, partSize
	composer := handler.NewStoreComposer()
	store.UseIn(composer)
	h, err := handler.NewHandler(handler.Config{BasePath: "/v1/uploads/", StoreComposer: composer,
		Logger: xslog.New(xslog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, fmt.Errorf("tusd: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tusd: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/uploads/", http.StripPrefix("/v1/uploads/", h))
	t := &tusdServer{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: mux}}
	go func() {
		if err := t.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Warn("tusd stopped", "err", err)
		}
	}()
	return t, nil
}

func (t *tusdServer) Close(ctx context.Context) error { return t.srv.Shutdown(ctx) }
