package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
)

// Upload benchmarks. Run:
//
//	go test ./server -run '^$' -bench 'Upload' -benchtime 5x
//
// BenchmarkUploadThroughput uploads the same 20 MiB file through the API (one tus creation and
// one PATCH, as tus-js-client sends a file) and, in the same run against the same MinIO, straight
// to it with minio-go's PutObject: compare their MB/s. BenchmarkUploadMemory runs 20 uploads of
// 20 MiB at once and reports the server's peak heap: the bytes stream through a bounded part
// buffer, so it must not grow with the files.

const benchFileSize = 20 << 20

// patternReader yields n bytes that sniff as a JPEG without holding them: a client streaming
// from a file.
type patternReader struct {
	n, pos int
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.pos >= p.n {
		return 0, io.EOF
	}
	k := min(len(b), p.n-p.pos)
	for i := range k {
		b[i] = byte((p.pos + i) * 31)
	}
	if p.pos == 0 && k >= 4 {
		copy(b, "\xFF\xD8\xFF\xE0")
	}
	p.pos += k
	return k, nil
}

func benchUpload(b *testing.B, e *upEnv, c *upCase, body func() io.Reader) {
	doc := e.newDocument(b, c, nil)
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/uploads", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+c.rep.token)
	req.Header.Set("Upload-Length", strconv.Itoa(benchFileSize))
	req.Header.Set("Upload-Metadata", metadata(doc))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		b.Fatalf("create: %d", res.StatusCode)
	}
	req, _ = http.NewRequest("PATCH", res.Header.Get("Location"), body())
	req.ContentLength = benchFileSize
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+c.rep.token)
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		b.Fatalf("patch: %d %s", res.StatusCode, data)
	}
}

func BenchmarkUploadThroughput(b *testing.B) {
	e := upSetup(b)
	c := e.newCase(b)
	file := make([]byte, benchFileSize)
	_, _ = io.ReadFull(&patternReader{n: benchFileSize}, file)

	b.Run("api-tus", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		for b.Loop() {
			benchUpload(b, e, c, func() io.Reader { return bytes.NewReader(file) })
		}
	})
	// minio-go's defaults (payload signed: SHA-256 of every byte), and unsigned as the server's
	// parts are sent.
	for name, opts := range map[string]minio.PutObjectOptions{
		"direct-putobject":          {ContentType: "image/jpeg"},
		"direct-putobject-unsigned": {ContentType: "image/jpeg", DisableContentSha256: true},
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(benchFileSize)
			for b.Loop() {
				if _, err := e.minio.PutObject(context.Background(), e.s3.Bucket, "direct/"+uuid.NewString(), bytes.NewReader(file), benchFileSize, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUploadMemory(b *testing.B) {
	e := upSetup(b)
	c := e.newCase(b)
	const uploads = 20
	for b.Loop() {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peakHeap, peakSys atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			var m runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peakHeap.Load() {
					peakHeap.Store(m.HeapInuse)
				}
				if m.Sys > peakSys.Load() {
					peakSys.Store(m.Sys)
				}
			}
		}()
		start := time.Now()
		var wg gosync.WaitGroup
		for range uploads {
			wg.Go(func() { benchUpload(b, e, c, func() io.Reader { return &patternReader{n: benchFileSize} }) })
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(stop)
		<-sampled
		b.ReportMetric(float64(peakHeap.Load()-min(peakHeap.Load(), base.HeapInuse))/(1<<20), "peak-heap-growth-MiB")
		b.ReportMetric(float64(peakHeap.Load())/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(peakSys.Load())/(1<<20), "peak-sys-MiB")
		b.ReportMetric(float64(uploads*benchFileSize)/(1<<20)/elapsed.Seconds(), "MiB/s")
	}
}
