package media

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"runtime"
	"testing"

	"github.com/fieldsync/fieldsync/internal/imagebomb"
	"github.com/fieldsync/fieldsync/internal/jobqueue"
)

// allocated returns the bytes allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := jpeg.Encode(&out, img, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := png.Encode(&out, img); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestDecodeCostBoundsWhatDecodingAllocates: the cost read from an image's header is at least
// what decoding it and making its thumbnail allocate, for each kind of image the decoders treat
// apart, so that the budget holds.
func TestDecodeCostBoundsWhatDecodingAllocates(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 1200, 900))
	for i := range gray.Pix {
		gray.Pix[i] = byte(i)
	}
	for name, data := range map[string][]byte{
		"jpeg 4:2:0":       encodeJPEG(t, halves(1600, 1200)),
		"jpeg grey":        encodeJPEG(t, gray),
		"jpeg progressive": imagebomb.ProgressiveJPEG(1600, 1200),
		"png 8-bit":        encodePNG(t, halves(1600, 1200)),
		"png grey":         encodePNG(t, gray),
		"png 16-bit":       imagebomb.PNG(1600, 1200),
	} {
		h, err := readHeader(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var thumbErr error
		got := allocated(func() { _, thumbErr = thumbnail(data, h, 1) })
		if thumbErr != nil {
			t.Fatalf("%s: %v", name, thumbErr)
		}
		t.Logf("%s: cost %d, allocated %d", name, h.cost, got)
		if got > uint64(h.cost) {
			t.Errorf("%s: decoding allocated %d bytes, more than the %d its header let through", name, got, h.cost)
		}
	}
}

// TestImageBombsAreRefusedUndecoded: small files that declare images whose decoding takes more
// than the budget (a 16-bit PNG, a progressive JPEG) are refused as too large from their header,
// without decoding; an ordinary photo is not.
func TestImageBombsAreRefusedUndecoded(t *testing.T) {
	d := newDecoder(DefaultMaxDecodeBytes)
	for name, data := range map[string][]byte{
		"png 16-bit 8000x6000":        imagebomb.PNG(8000, 6000),
		"jpeg progressive 8944x8944":  imagebomb.ProgressiveJPEG(8944, 8944),
		"jpeg progressive 7000x5000":  imagebomb.ProgressiveJPEG(7000, 5000),
		"jpeg progressive 65000x1000": imagebomb.ProgressiveJPEG(65000, 1000),
	} {
		var err error
		got := allocated(func() { _, err = d.thumbnail(context.Background(), data, 1) })
		var r *refusal
		if !errors.As(err, &r) || r.reason != reasonTooLarge {
			t.Errorf("%s (%d bytes): %v, want refused as %s", name, len(data), err, reasonTooLarge)
			continue
		}
		if got > 1<<20 {
			t.Errorf("%s: refusing it allocated %d bytes", name, got)
		}
	}
	if _, err := d.thumbnail(context.Background(), encodeJPEG(t, halves(1600, 1200)), 1); err != nil {
		t.Errorf("an ordinary photo: %v", err)
	}
	var r *refusal
	if _, err := d.thumbnail(context.Background(), []byte("\xff\xd8\xff\xe0 not a jpeg"), 1); !errors.As(err, &r) || r.reason != reasonUnreadable {
		t.Errorf("garbage: %v, want refused as %s", err, reasonUnreadable)
	}
}

// TestTwelveMegapixelPhotoFitsTheBudget: the photos phones take decode within the default
// budget with room for a second at once.
func TestTwelveMegapixelPhotoFitsTheBudget(t *testing.T) {
	// A header is all readHeader needs: a baseline 4:2:0 JPEG of 4000x3000, as cameras write.
	img := image.NewYCbCr(image.Rect(0, 0, 4000, 3000), image.YCbCrSubsampleRatio420)
	h, err := readHeader(encodeJPEG(t, img))
	if err != nil {
		t.Fatal(err)
	}
	if h.cost > DefaultMaxDecodeBytes/2 {
		t.Errorf("a 12-megapixel photo costs %d bytes, more than half the default budget %d", h.cost, DefaultMaxDecodeBytes)
	}
}

// TestProcessTimeoutAllowsRescue: River rescues a job only after its kind's timeout; the
// processing job's stays below jobqueue.RescueAfter, so a dead replica's job is taken up within a
// minute (see package jobqueue).
func TestProcessTimeoutAllowsRescue(t *testing.T) {
	if got := (&processWorker{}).Timeout(nil); got <= 0 || got >= jobqueue.RescueAfter {
		t.Errorf("processing timeout %s, want below %s", got, jobqueue.RescueAfter)
	}
}

// FuzzImageHeader: any bytes' header is read without panicking, and an image whose header lets it
// through allocates no more decoding than its cost said.
func FuzzImageHeader(f *testing.F) {
	f.Add(encodeJPEG(f, halves(40, 30)))
	f.Add(encodePNG(f, halves(40, 30)))
	f.Add(imagebomb.ProgressiveJPEG(40, 30))
	f.Add(imagebomb.PNG(40, 30))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := readHeader(data)
		if err != nil {
			return
		}
		if h.cost < h.pixels() {
			t.Fatalf("a %dx%d image costs %d bytes", h.width, h.height, h.cost)
		}
		if h.cost > 8<<20 {
			return
		}
		got := allocated(func() { _, _ = thumbnail(data, h, 1) })
		if got > uint64(h.cost)+uint64(len(data))+64<<10 {
			t.Fatalf("a %s of %dx%d allocated %d bytes decoding, its cost was %d", h.format, h.width, h.height, got, h.cost)
		}
	})
}
