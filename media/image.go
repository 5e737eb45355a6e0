package media

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/draw"
)

// Thumbnails are decoded with the standard library (image/jpeg, image/png), scaled with
// golang.org/x/image/draw (the Go project's own, CatmullRom), turned upright by the EXIF
// orientation, and encoded anew as JPEG: re-encoding keeps no metadata, so the thumbnail carries
// no EXIF (no GPS).

const (
	thumbnailSide = 512
	// maxPixels bounds what is decoded: a small file can declare a huge image.
	maxPixels = 80_000_000
)

// imageSize returns the dimensions of an image as displayed (after orientation).
func imageSize(data []byte, orientation int) (int, int, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return 0, 0, fmt.Errorf("read image header: %w", err)
	}
	if orientation >= 5 {
		return cfg.Height, cfg.Width, nil
	}
	return cfg.Width, cfg.Height, nil
}

// thumbnail returns a JPEG of the image, upright, fitting in thumbnailSide × thumbnailSide.
func thumbnail(data []byte, orientation int) ([]byte, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read image header: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Errorf("image of %dx%d pixels is too large to decode", cfg.Width, cfg.Height)
	}
	var src image.Image
	switch format {
	case "jpeg":
		src, err = jpeg.Decode(bytes.NewReader(data))
	case "png":
		src, err = png.Decode(bytes.NewReader(data))
	default:
		return nil, fmt.Errorf("no thumbnail for %s images", format)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", format, err)
	}
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if w > thumbnailSide || h > thumbnailSide {
		if w >= h {
			w, h = thumbnailSide, max(1, h*thumbnailSide/b.Dx())
		} else {
			w, h = max(1, w*thumbnailSide/b.Dy()), thumbnailSide
		}
	}
	small := image.NewRGBA(image.Rect(0, 0, w, h))
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
