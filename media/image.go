package media

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/draw"
	"golang.org/x/sync/semaphore"
)

// Thumbnails are decoded with the standard library (image/jpeg, image/png), scaled with
// golang.org/x/image/draw (the Go project's own, CatmullRom), turned upright by the EXIF
// orientation, and encoded anew as JPEG: re-encoding keeps no metadata, so the thumbnail carries
// no EXIF (no GPS).

const (
	thumbnailSide = 512
	// maxPixels bounds what is decoded whatever the memory budget: decoding and scaling time
	// grows with it.
	maxPixels = 80_000_000
	// maxSide is the largest width or height a document records (the sync engine's limit).
	maxSide = 1 << 20
)

// Why processing made no thumbnail: the document's processing_error.
const (
	reasonTooLarge   = "image_too_large"
	reasonUnreadable = "image_unreadable"
)

// refusal is why a thumbnail will not be made, whatever the retries: reason is the document's
// processing_error.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.reason + ": " + r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// decoder makes thumbnails within a budget of the bytes decoding takes, shared by every
// processing job of the replica: the most an image may take alone, and all of them together.
type decoder struct {
	maxBytes int64
	inUse    *semaphore.Weighted
}

func newDecoder(maxBytes int64) *decoder {
	return &decoder{maxBytes: maxBytes, inUse: semaphore.NewWeighted(maxBytes)}
}

// thumbnail returns the thumbnail of an image (see the function thumbnail), once the bytes
// decoding it takes fit in the budget. It returns a *refusal for an image too large for the
// budget or not decodable, and ctx's error if ctx ends while it waits.
func (d *decoder) thumbnail(ctx context.Context, data []byte, orientation int) ([]byte, error) {
	h, err := readHeader(data)
	if err != nil {
		return nil, &refusal{reasonUnreadable, err}
	}
	if h.pixels() > maxPixels || h.cost > d.maxBytes {
		return nil, &refusal{reasonTooLarge, fmt.Errorf("a %s of %dx%d pixels takes %d bytes to decode; at most %d bytes and %d pixels are",
			h.format, h.width, h.height, h.cost, d.maxBytes, maxPixels)}
	}
	if err := d.inUse.Acquire(ctx, h.cost); err != nil {
		return nil, fmt.Errorf("wait to decode: %w", err)
	}
	defer d.inUse.Release(h.cost)
	thumb, err := thumbnail(data, h, orientation)
	if err != nil {
		return nil, &refusal{reasonUnreadable, err}
	}
	return thumb, nil
}

// header is what an image's header says: its stored size, format, and the bytes decoding it and
// scaling it to a thumbnail take at most.
type header struct {
	width, height int
	format        string
	cost          int64
}

// readHeader reads an image's header. It returns an error if data is no JPEG or PNG the
// standard library can read the header of.
//
// A small file can declare a huge image, and what decoding takes depends on more than its pixels
// (a 16-bit PNG decodes to 8 bytes a pixel, a progressive JPEG keeps 4 bytes of coefficients a
// sample besides the image), so the cost is computed from the header, as image/jpeg and
// image/png allocate, before anything is decoded.
func readHeader(data []byte) (header, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return header{}, fmt.Errorf("read image header: %w", err)
	}
	h := header{width: cfg.Width, height: cfg.Height, format: format}
	if h.width <= 0 || h.height <= 0 {
		return header{}, fmt.Errorf("image of %dx%d pixels", h.width, h.height)
	}
	var decoded int64
	switch format {
	case "jpeg":
		decoded = jpegDecodeBytes(data, h.width, h.height)
	case "png":
		decoded = pngDecodeBytes(data, h.width, h.height)
	default:
		return header{}, fmt.Errorf("no thumbnail for %s images", format)
	}
	// The scaler (x/image/draw's kernels) keeps a float64 RGBA for each thumbnail column of
	// every source row; the thumbnail is drawn, then turned upright into a copy.
	tw, th := thumbnailSize(h.width, h.height)
	h.cost = decoded + int64(tw)*int64(h.height)*32 + 2*int64(tw)*int64(th)*4
	return h, nil
}

// pixels is the image's pixel count.
func (h header) pixels() int64 { return int64(h.width) * int64(h.height) }

// size returns the dimensions of the image as displayed (after orientation).
func (h header) size(orientation int) (int, int) {
	if orientation >= 5 {
		return h.height, h.width
	}
	return h.width, h.height
}

// jpegDecodeBytes is what image/jpeg allocates to decode a w×h JPEG, read from its frame header
// (SOF): each component's samples padded to whole MCUs, a byte each; for four components (CMYK)
// the CMYK image besides; for a progressive JPEG, each sample's coefficient (an int32) too. A
// JPEG whose frame header is not found is counted as the costliest kind (progressive, 4:4:4).
func jpegDecodeBytes(data []byte, w, h int) int64 {
	cost := int64(-1)
	walkJPEG(data, func(marker byte, seg []byte) bool {
		// SOF markers: C0 to CF but DHT (C4), JPG (C8) and DAC (CC).
		if marker < 0xC0 || marker > 0xCF || marker == 0xC4 || marker == 0xC8 || marker == 0xCC {
			return true
		}
		n := 0
		if len(seg) >= 6 {
			n = int(seg[5])
		}
		if n == 0 || len(seg) < 6+3*n {
			return false
		}
		hmax, vmax := 1, 1
		for i := range n {
			hv := seg[6+3*i+1]
			hmax, vmax = max(hmax, int(hv>>4)), max(vmax, int(hv&15))
		}
		mcuW, mcuH := int64(w+8*hmax-1)/int64(8*hmax), int64(h+8*vmax-1)/int64(8*vmax)
		var samples int64
		for i := range n {
			hv := seg[6+3*i+1]
			samples += mcuW * mcuH * int64(max(1, int(hv>>4))*max(1, int(hv&15))) * 64
		}
		cost = samples
		if n == 4 {
			cost += mcuW * mcuH * int64(hmax*vmax) * 64 * 4
		}
		if marker&3 == 2 { // progressive: C2, C6, CA, CE
			cost += samples * 4
		}
		return false
	})
	if cost < 0 {
		padded := int64(w+7) / 8 * 8 * (int64(h+7) / 8 * 8)
		cost = padded * 3 * 5
	}
	return cost
}

// pngDecodeBytes is what image/png allocates to decode a w×h PNG: the image at its bytes a pixel
// (1 for a palette; 8 for 16 bits a channel; else 4, as grey with a transparent colour decodes to
// NRGBA), twice for an interlaced PNG (each pass is decoded apart, then merged), and two rows.
func pngDecodeBytes(data []byte, w, h int) int64 {
	const ihdr = len(pngSignature) + 8 // IHDR's data: width, height, bit depth, colour type, ..., interlace
	bpp := int64(8)
	interlaced := true
	if len(data) >= ihdr+13 {
		depth, colorType := data[ihdr+8], data[ihdr+9]
		switch {
		case colorType == 3:
			bpp = 1
		case depth < 16:
			bpp = 4
		}
		interlaced = data[ihdr+12] != 0
	}
	cost := int64(w)*int64(h)*bpp + 2*(int64(w)*8+1)
	if interlaced {
		cost *= 2
	}
	return cost
}

// thumbnailSize returns the size of the thumbnail of a w×h image: within thumbnailSide ×
// thumbnailSide, the same shape.
func thumbnailSize(w, h int) (int, int) {
	if w <= thumbnailSide && h <= thumbnailSide {
		return w, h
	}
	if w >= h {
		return thumbnailSide, max(1, int(int64(h)*thumbnailSide/int64(w)))
	}
	return max(1, int(int64(w)*thumbnailSide/int64(h))), thumbnailSide
}

// thumbnail returns a JPEG of the image whose header is h, upright, fitting in thumbnailSide ×
// thumbnailSide. The caller has checked h.cost.
func thumbnail(data []byte, h header, orientation int) ([]byte, error) {
	var src image.Image
	var err error
	switch h.format {
	case "jpeg":
		src, err = jpeg.Decode(bytes.NewReader(data))
	case "png":
		src, err = png.Decode(bytes.NewReader(data))
	default:
		return nil, fmt.Errorf("no thumbnail for %s images", h.format)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", h.format, err)
	}
	b := src.Bounds()
	w, ht := thumbnailSize(b.Dx(), b.Dy())
	small := image.NewRGBA(image.Rect(0, 0, w, ht))
	// A transparent PNG is laid on white: JPEG has no alpha.
	draw.Draw(small, small.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.CatmullRom.Scale(small, small.Bounds(), src, b, draw.Over, nil)
	var out bytes.Buffer
	if err := jpeg.Encode(&out, orient(small, orientation), &jpeg.Options{Quality: 80}); err != nil {
		return nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	return out.Bytes(), nil
}

// orient turns an image stored with EXIF orientation o (1 to 8) upright.
func orient(src *image.RGBA, o int) *image.RGBA {
	if o <= 1 || o > 8 {
		return src
	}
	w, h := src.Bounds().Dx(), src.Bounds().Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range h {
		for x := range w {
			var dx, dy int
			switch o {
			case 2: // mirrored
				dx, dy = w-1-x, y
			case 3: // upside down
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored upside down
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // stored turned left: turn right
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // stored turned right: turn left
				dx, dy = y, w-1-x
			}
			i, j := src.PixOffset(x, y), dst.PixOffset(dx, dy)
			copy(dst.Pix[j:j+4], src.Pix[i:i+4])
		}
	}
	return dst
}
