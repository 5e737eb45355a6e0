package media

import (
	"context"
	"errors"
	"image"
	"runtime"
	"runtime/metrics"
	gosync "sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/imagebomb"
)

// peakHeap runs f and returns the most heap (objects live or not yet collected) in use while it
// ran, above what was in use before, sampled every millisecond.
func peakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak uint64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	<-stopped
	peak = max(peak, read())
	if peak < base {
		return 0
	}
	return peak - base
}

// BenchmarkImageBomb measures the heap that making thumbnails takes: of an ordinary 12-megapixel
// photo, of two image bombs at once (a 373 KB 16-bit PNG of 8000x6000, a 469 KB progressive
// JPEG of 8944x8944) with the decoding budget and without it (as before: only the 80-megapixel
// cap), and of two of the largest photos the budget lets through (80 megapixels) at once. It
// reports the peak heap in MB and as a multiple of the photo's:
//
//	go test -run '^$' -bench BenchmarkImageBomb -benchtime 2x ./media/
func BenchmarkImageBomb(b *testing.B) {
	photo := encodeJPEG(b, halves(4000, 3000))
	largeImg := image.NewYCbCr(image.Rect(0, 0, 10000, 8000), image.YCbCrSubsampleRatio420)
	for i := range largeImg.Y {
		largeImg.Y[i] = byte(i)
	}
	large := encodeJPEG(b, largeImg)
	largeImg = nil
	bombs := [][]byte{imagebomb.PNG(8000, 6000), imagebomb.ProgressiveJPEG(8944, 8944)}
	bounded, unbounded := newDecoder(DefaultMaxDecodeBytes), newDecoder(1<<40)

	// thumbnails makes the thumbnails of files at once with d.
	thumbnails := func(b *testing.B, d *decoder, files ...[]byte) {
		var wg gosync.WaitGroup
		for _, f := range files {
			wg.Go(func() {
				var refused *refusal
				if _, err := d.thumbnail(context.Background(), f, 1); err != nil && !errors.As(err, &refused) {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	photoPeak := peakHeap(func() { thumbnails(b, bounded, photo) })
	for _, bc := range []struct {
		name  string
		d     *decoder
		files [][]byte
	}{
		{"photo_12MP", bounded, [][]byte{photo}},
		{"two_bombs_budget", bounded, bombs},
		{"two_bombs_no_budget", unbounded, bombs},
		{"two_80MP_photos_budget", bounded, [][]byte{large, large}},
		{"two_80MP_photos_no_budget", unbounded, [][]byte{large, large}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var peak uint64
			for b.Loop() {
				peak = max(peak, peakHeap(func() { thumbnails(b, bc.d, bc.files...) }))
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(peak)/float64(photoPeak), "x-photo")
		})
	}
}
