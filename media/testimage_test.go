package media

import (
	"bytes"
	"encoding/binary"
	"flag"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated files under testdata/")

// The test photo (testdata/photo_exif.jpg) is made here: an 800×400 JPEG whose left half is red
// and right half blue, stored "turned left" (EXIF orientation 6, so upright it is 400×800 with red
// on top), taken on 2026-03-14 at 09:26:53 +01:00 in Lisbon (38°43'20.28" N, 9°8'21.48" W). The
// EXIF block is written byte by byte as a camera writes it: an APP1 segment holding a TIFF
// structure with IFD0, the Exif IFD and the GPS IFD.

type tiffEntry struct {
	tag, typ uint16
	count    uint32
	data     []byte // little-endian value
}

func rational(num, den uint32) []byte {
	return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, num), den)
}

// buildTIFF lays out IFD0 (pointing at the Exif and GPS IFDs), the Exif IFD and the GPS IFD, and
// the values too long to sit in their entries, little-endian.
func buildTIFF(ifd0, exif, gps []tiffEntry) []byte {
	size := func(n int) uint32 { return uint32(2 + 12*n + 4) }
	off0 := uint32(8)
	ifd0 = append(ifd0, tiffEntry{tagExifIFD, tiffTypeLong, 1, nil}, tiffEntry{tagGPSIFD, tiffTypeLong, 1, nil})
	offExif := off0 + size(len(ifd0))
	offGPS := offExif + size(len(exif))
	ifd0[len(ifd0)-2].data = binary.LittleEndian.AppendUint32(nil, offExif)
	ifd0[len(ifd0)-1].data = binary.LittleEndian.AppendUint32(nil, offGPS)
	dataOff := offGPS + size(len(gps))
	var out, data bytes.Buffer
	out.WriteString("II")
	binary.Write(&out, binary.LittleEndian, uint16(42))
	binary.Write(&out, binary.LittleEndian, off0)
	for _, ifd := range [][]tiffEntry{ifd0, exif, gps} {
		binary.Write(&out, binary.LittleEndian, uint16(len(ifd)))
		for _, e := range ifd {
			binary.Write(&out, binary.LittleEndian, e.tag)
			binary.Write(&out, binary.LittleEndian, e.typ)
			binary.Write(&out, binary.LittleEndian, e.count)
			if len(e.data) <= 4 {
				var v [4]byte
				copy(v[:], e.data)
				out.Write(v[:])
			} else {
				binary.Write(&out, binary.LittleEndian, dataOff+uint32(data.Len()))
				data.Write(e.data)
				if data.Len()%2 == 1 {
					data.WriteByte(0)
				}
			}
		}
		binary.Write(&out, binary.LittleEndian, uint32(0))
	}
	out.Write(data.Bytes())
	return out.Bytes()
}

// withEXIF inserts an APP1 Exif segment holding tiff right after a JPEG's SOI marker.
func withEXIF(jpg, tiff []byte) []byte {
	seg := append([]byte(exifHeader), tiff...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, 0xFF, 0xE1, byte((len(seg)+2)>>8), byte(len(seg)+2))
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// halves is a w×h image, left half red and right half blue.
func halves(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{220, 20, 20, 255}
			if x >= w/2 {
				c = color.RGBA{20, 20, 220, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func makeTestPhoto(t testing.TB) []byte {
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, halves(800, 400), &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	ascii := func(s string) []byte { return append([]byte(s), 0) }
	tiff := buildTIFF(
		[]tiffEntry{{tagOrientation, tiffTypeShort, 1, binary.LittleEndian.AppendUint16(nil, 6)}},
		[]tiffEntry{
			{tagDateTimeOriginal, tiffTypeASCII, 20, ascii("2026:03:14 09:26:53")},
			{tagOffsetTimeOrig, tiffTypeASCII, 7, ascii("+01:00")},
		},
		[]tiffEntry{
			{tagGPSLatitudeRef, tiffTypeASCII, 2, ascii("N")},
			{tagGPSLatitude, tiffTypeRational, 3, append(append(rational(38, 1), rational(43, 1)...), rational(2028, 100)...)},
			{tagGPSLongitudeRef, tiffTypeASCII, 2, ascii("W")},
			{tagGPSLongitude, tiffTypeRational, 3, append(append(rational(9, 1), rational(8, 1)...), rational(2148, 100)...)},
		},
	)
	return withEXIF(jpg.Bytes(), tiff)
}

// TestTestPhotoIsCurrent keeps testdata/photo_exif.jpg what makeTestPhoto makes (go test -update
// rewrites it); the server's tests upload it.
func TestTestPhotoIsCurrent(t *testing.T) {
	want := makeTestPhoto(t)
	if *update {
		if err := os.WriteFile("testdata/photo_exif.jpg", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("testdata/photo_exif.jpg")
	if err != nil {
		t.Fatalf("%v (run go test ./media -run TestTestPhotoIsCurrent -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("testdata/photo_exif.jpg is stale: run go test ./media -run TestTestPhotoIsCurrent -update")
	}
}
