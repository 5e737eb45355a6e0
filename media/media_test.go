package media

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"testing"
	"time"
)

func TestReadEXIF(t *testing.T) {
	info, err := readEXIF(makeTestPhoto(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.Orientation != 6 {
		t.Errorf("orientation %d, want 6", info.Orientation)
	}
	want := time.Date(2026, 3, 14, 8, 26, 53, 0, time.UTC)
	if info.CapturedAt == nil || !info.CapturedAt.Equal(want) {
		t.Errorf("captured at %v, want %v", info.CapturedAt, want)
	}
	if info.Lat == nil || math.Abs(*info.Lat-38.7223) > 1e-4 || math.Abs(*info.Lng-(-9.1393)) > 1e-4 {
		t.Errorf("GPS %v, %v; want 38.7223, -9.1393", info.Lat, info.Lng)
	}
	if _, err := readEXIF([]byte("\xFF\xD8\xFF\xDB\x00\x04ab")); err != errNoEXIF {
		t.Errorf("a JPEG without EXIF: %v", err)
	}
}

// FuzzEXIF checks the EXIF reader never panics nor returns values out of range on any input.
func FuzzEXIF(f *testing.F) {
	f.Add(makeTestPhoto(f)[:2048])
	f.Add([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x08eXIfII*\x00\x08\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := readEXIF(data)
		if err != nil {
			return
		}
		if info.Orientation < 0 || info.Orientation > 8 {
			t.Fatalf("orientation %d", info.Orientation)
		}
		if info.Lat != nil && (math.Abs(*info.Lat) > 90 || math.Abs(*info.Lng) > 180) {
			t.Fatalf("GPS %v %v", *info.Lat, *info.Lng)
		}
	})
}

func TestSniff(t *testing.T) {
	photo := makeTestPhoto(t)
	heic := append([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), make([]byte, 64)...)
	elf := append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 4096)...)
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"jpeg":       {photo, "image/jpeg"},
		"png":        {[]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"), "image/png"},
		"heic":       {heic, "image/heic"},
		"pdf":        {[]byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"), "application/pdf"},
		"executable": {elf, ""},
		"html":       {[]byte("<!DOCTYPE html><html><script>alert(1)</script>"), ""},
		"zip":        {[]byte("PK\x03\x04\x14\x00\x00\x00"), ""},
	} {
		got, err := sniff(tc.data)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("%s: sniffed %q, %v; want %q", name, got, err, tc.want)
		}
	}
}

func TestThumbnailIsUprightAndBare(t *testing.T) {
	photo := makeTestPhoto(t)
	h, err := readHeader(photo)
	if err != nil {
		t.Fatal(err)
	}
	thumb, err := thumbnail(photo, h, 6)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(thumb, []byte(exifHeader)) {
		t.Error("the thumbnail carries EXIF")
	}
	img, err := jpeg.Decode(bytes.NewReader(thumb))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if b.Dx() != 256 || b.Dy() != 512 {
		t.Fatalf("thumbnail %dx%d, want 256x512 (800x400 turned upright, fit in 512)", b.Dx(), b.Dy())
	}
	if !reddish(img.At(128, 64)) || !bluish(img.At(128, 448)) {
		t.Errorf("turned the wrong way: top %v, bottom %v; want red on top", img.At(128, 64), img.At(128, 448))
	}
}

func TestOrientAllEight(t *testing.T) {
	// A 3×2 image with distinct pixels; each orientation must map the stored top-left pixel to
	// where EXIF says it belongs once upright.
	src := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for i := range src.Pix {
		src.Pix[i] = byte(i)
	}
	corner := src.RGBAAt(0, 0)
	where := map[int][2]int{1: {0, 0}, 2: {2, 0}, 3: {2, 1}, 4: {0, 1}, 5: {0, 0}, 6: {1, 0}, 7: {1, 2}, 8: {0, 2}}
	for o, p := range where {
		dst := orient(src, o)
		if got := dst.RGBAAt(p[0], p[1]); got != corner {
			t.Errorf("orientation %d: pixel at %v is %v, want the stored top-left %v", o, p, got, corner)
		}
		if (o >= 5) != (dst.Bounds().Dx() == 2) {
			t.Errorf("orientation %d: size %v", o, dst.Bounds())
		}
	}
}

func reddish(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r > 2*b && r > 2*g
}

func bluish(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return b > 2*r && b > 2*g
}
