package devenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/fieldsync/fieldsync/media"
)

// MinIOModule is the MinIO server release fieldsync is developed and tested against, as a module
// path and version for go install. `make minio` installs it, and docker-compose.yml builds its
// image from it; tests fail if the Makefile or the compose file names another.
const MinIOModule = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// minioRegion is the region a MinIO server reports unless configured otherwise.
const minioRegion = "us-east-1"

// errMinIONotFound is what a newcomer sees when there is no MinIO to start.
var errMinIONotFound = errors.New("MinIO not found: run `make minio` (it runs go install " + MinIOModule +
	", about 6 minutes the first time) or set FIELDSYNC_S3_ENDPOINT, FIELDSYNC_S3_ACCESS_KEY, " +
	"FIELDSYNC_S3_SECRET_KEY and FIELDSYNC_S3_BUCKET")

// MinIOServer is an S3-compatible object store ready for use, found or started by MinIO.
type MinIOServer struct {
	// Config reaches the store and names the bucket.
	Config media.Config

	closeOnce sync.Once
	closeFunc func() error // nil when the store was configured rather than started
	closeErr  error
}

// Close stops the server and removes its data if MinIO started it; for a configured store it does
// nothing. It returns an error if the server could not be stopped or its data removed. Calling it
// more than once is safe.
func (s *MinIOServer) Close() error {
	s.closeOnce.Do(func() {
		if s.closeFunc != nil {
			s.closeErr = s.closeFunc()
		}
	})
	return s.closeErr
}

// StartMinIO starts a throwaway MinIO server from the minio binary on PATH, in $GOBIN or in
// $GOPATH/bin, on free loopback ports with random credentials and data in a temporary directory,
// and creates bucket in it unless bucket is empty. Close stops the server and removes its data; it
// also dies with this process on Linux. It returns an error telling the user how to install MinIO if there is no minio binary, and
// one that includes the server's last output if it does not start.
func StartMinIO(ctx context.Context, log *slog.Logger, bucket string) (*MinIOServer, error) {
	if bucket != "" {
		// Caught here, a bad name would otherwise look like a server slow to start.
		if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
			return nil, fmt.Errorf("bucket %q: %w", bucket, err)
		}
	}
	bin, err := findMinIO()
	if err != nil {
		return nil, err
	}
	return startMinIO(ctx, log, bin, bucket)
}

// findMinIO returns the path of the minio binary: on PATH, else in $GOBIN, else in the bin
// directory of the first $GOPATH entry (default ~/go). It returns errMinIONotFound if there is none.
func findMinIO() (string, error) {
	if path, err := exec.LookPath("minio"); err == nil {
		return path, nil
	}
	name := "minio"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if gopath := os.Getenv("GOPATH"); gopath != "" {
		dirs = append(dirs, filepath.Join(filepath.SplitList(gopath)[0], "bin"))
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, dir := range dirs {
		if isExecutable(filepath.Join(dir, name)) {
			return filepath.Join(dir, name), nil
		}
	}
	// GOBIN and GOPATH may be set with `go env -w` rather than in the environment.
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) == 2 {
			for _, dir := range []string{strings.TrimSpace(lines[0]), filepath.Join(filepath.SplitList(strings.TrimSpace(lines[1]))[0], "bin")} {
				if dir != "" && dir != "bin" && isExecutable(filepath.Join(dir, name)) {
					return filepath.Join(dir, name), nil
				}
			}
		}
	}
	return "", errMinIONotFound
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && (runtime.GOOS == "windows" || fi.Mode().Perm()&0o111 != 0)
}

// startMinIO starts the minio binary bin as described for MinIO and creates bucket in it.
func startMinIO(ctx context.Context, log *slog.Logger, bin, bucket string) (_ *MinIOServer, err error) {
	dir, err := makeTempDir(log, "fieldsync-minio-")
	if err != nil {
		return nil, fmt.Errorf("MinIO directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()

	accessKey := "fieldsync-" + RandomHex(4)
	secretKey := RandomHex(16)
	env := []string{
		"MINIO_ROOT_USER=" + accessKey,
		"MINIO_ROOT_PASSWORD=" + secretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	}
	for _, kv := range os.Environ() {
		// A developer's own MinIO settings (MINIO_VOLUMES, MINIO_ROOT_USER, ...) must not leak in.
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}

	// A free port can be taken by someone else before minio binds it; try a few.
	var last error
	for range 3 {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		consoleAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
		cmd := exec.Command(bin, "server", filepath.Join(dir, "data"),
			"--address", addr, "--console-address", consoleAddr, "--quiet")
		cmd.Env = env
		cmd.Dir = dir
		dieWithParent(cmd, syscall.SIGKILL)
		p, err := startProcess(cmd)
		if err != nil {
			return nil, err
		}
		cfg := media.Config{Endpoint: addr, AccessKey: accessKey, SecretKey: secretKey, Bucket: bucket, Region: minioRegion}
		err = waitMinIO(ctx, p, cfg)
		if err == nil {
			log.Info("started throwaway MinIO", "endpoint", addr, "bucket", bucket, "bin", bin)
			return &MinIOServer{Config: cfg, closeFunc: func() error {
				stopErr := p.stop(syscall.SIGKILL, 10*time.Second)
				if err := os.RemoveAll(dir); err != nil {
					return errors.Join(stopErr, fmt.Errorf("remove MinIO directory: %w", err))
				}
				return stopErr
			}}, nil
		}
		_ = p.stop(syscall.SIGKILL, 5*time.Second)
		last = fmt.Errorf("start MinIO (%s) on %s: %w; its output: %s", bin, addr, err, p.out)
		if ctx.Err() != nil || !strings.Contains(p.out.String(), "already in use") {
			return nil, last
		}
	}
	return nil, last
}

// waitMinIO waits, for up to 30 seconds, until the server started as p answers its liveness probe
// and has created cfg.Bucket (if not empty). It returns an error if the server exits, the time runs
// out or ctx is done.
func waitMinIO(ctx context.Context, p *process, cfg media.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Region: cfg.Region,
	})
	if err != nil {
		return fmt.Errorf("create MinIO client: %w", err)
	}
	// The server answers the liveness probe a moment before it serves S3 requests, so creating
	// the bucket is retried too.
	live := "http://" + cfg.Endpoint + "/minio/health/live"
	ready := false
	backoff := 20 * time.Millisecond
	for {
		if !ready {
			ready, err = probe(ctx, live)
		}
		if ready {
			err = makeBucket(ctx, client, cfg.Bucket)
			if err == nil {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("minio exited: %v", p.err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for MinIO: %w (last error: %w)", ctx.Err(), err)
		case <-p.done:
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// probe reports whether a GET of url answers 200 OK.
func probe(ctx context.Context, url string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, fmt.Errorf("probe %s: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("probe %s: %s", url, resp.Status)
	}
	return true, nil
}

// makeBucket creates bucket unless it is empty or already exists.
func makeBucket(ctx context.Context, client *minio.Client, bucket string) error {
	if bucket == "" {
		return nil
	}
	err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: minioRegion})
	if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}
