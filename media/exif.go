package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"time"
)

// A small EXIF reader for the four things documents need: orientation, capture time, and GPS
// latitude and longitude. It was written rather than taken from a library: rwcarlsen/goexif has
// had no release since 2019, and dsoprea/go-exif brings a logging and errors stack and panics on
// malformed input; reading six tags of a TIFF structure is a page of bounds-checked code, fuzzed
// with the rest of the client-input decoders (FuzzEXIF).

// exifInfo is what a photo's EXIF says; zero values mean absent.
type exifInfo struct {
	Orientation int // 1 to 8, 0 when absent
	CapturedAt  *time.Time
	Lat, Lng    *float64
}

// TIFF tags read.
const (
	tagOrientation        = 0x0112
	tagDateTime           = 0x0132
	tagExifIFD            = 0x8769
	tagGPSIFD             = 0x8825
	tagDateTimeOriginal   = 0x9003
	tagOffsetTimeOrig     = 0x9011
	tagGPSLatitudeRef     = 0x0001
	tagGPSLatitude        = 0x0002
	tagGPSLongitudeRef    = 0x0003
	tagGPSLongitude       = 0x0004
	maxIFDEntries         = 1000
	tiffTypeASCII         = 2
	tiffTypeShort         = 3
	tiffTypeLong          = 4
	tiffTypeRational      = 5
	exifHeader            = "Exif\x00\x00"
	pngSignature          = "\x89PNG\r\n\x1a\n"
	maxJPEGSegmentsToRead = 64
)

var errNoEXIF = errors.New("no EXIF")

// readEXIF finds the EXIF block of a JPEG (APP1) or PNG (eXIf chunk) and reads it.
func readEXIF(data []byte) (exifInfo, error) {
	tiff, err := findEXIF(data)
	if err != nil {
		return exifInfo{}, err
	}
	return parseTIFF(tiff)
}

func findEXIF(data []byte) ([]byte, error) {
	switch {
	case len(data) >= 2 && data[0] == 0xFF && data[1] == 0xD8:
		var found []byte
		walkJPEG(data, func(marker byte, seg []byte) bool {
			if marker == 0xE1 && bytes.HasPrefix(seg, []byte(exifHeader)) {
				found = seg[len(exifHeader):]
				return false
			}
			return true
		})
		if found == nil {
			return nil, errNoEXIF
		}
		return found, nil
	case bytes.HasPrefix(data, []byte(pngSignature)):
		pos := len(pngSignature)
		for pos+12 <= len(data) {
			size := binary.BigEndian.Uint32(data[pos:])
			typ := string(data[pos+4 : pos+8])
			if uint64(size) > uint64(len(data)-pos-12) {
				return nil, errNoEXIF
			}
			if typ == "eXIf" {
				return data[pos+8 : pos+8+int(size)], nil
			}
			if typ == "IDAT" || typ == "IEND" {
				return nil, errNoEXIF // eXIf must come before the image data
			}
			pos += 12 + int(size)
		}
	}
	return nil, errNoEXIF
}

// walkJPEG calls fn with each marker segment of a JPEG's header (its marker and the bytes after
// its length), up to the first scan, until fn returns false. It stops quietly at anything
// malformed, and after maxJPEGSegmentsToRead segments.
func walkJPEG(data []byte, fn func(marker byte, seg []byte) bool) {
	if len(data) < 2 || data[0] != 0xFF || data[1] != 0xD8 {
		return
	}
	pos := 2
	for range maxJPEGSegmentsToRead {
		// Markers may be padded with extra 0xFF bytes.
		for pos < len(data) && data[pos] == 0xFF && pos+1 < len(data) && data[pos+1] == 0xFF {
			pos++
		}
		if pos+4 > len(data) || data[pos] != 0xFF {
			return
		}
		marker := data[pos+1]
		if marker == 0xDA || marker == 0xD9 { // start of scan, end of image: no more metadata
			return
		}
		if marker >= 0xD0 && marker <= 0xD7 || marker == 0x01 { // markers without a length
			pos += 2
			continue
		}
		size := int(binary.BigEndian.Uint16(data[pos+2:]))
		if size < 2 || pos+2+size > len(data) {
			return
		}
		if !fn(marker, data[pos+4:pos+2+size]) {
			return
		}
		pos += 2 + size
	}
}

// tiff is a TIFF structure with its byte order.
type tiff struct {
	b     []byte
	order binary.ByteOrder
}

// entry is one IFD entry: its type, count, and the bytes of its value.
type entry struct {
	typ   uint16
	count uint32
	value []byte
}

func parseTIFF(b []byte) (exifInfo, error) {
	var info exifInfo
	if len(b) < 8 {
		return info, errNoEXIF
	}
	t := tiff{b: b}
	switch string(b[:2]) {
	case "II":
		t.order = binary.LittleEndian
	case "MM":
		t.order = binary.BigEndian
	default:
		return info, errNoEXIF
	}
	if t.order.Uint16(b[2:]) != 42 {
		return info, errNoEXIF
	}
	ifd0, ok := t.ifd(t.order.Uint32(b[4:]))
	if !ok {
		return info, errNoEXIF
	}
	if e, ok := ifd0[tagOrientation]; ok {
		if o, ok := t.uint(e); ok && o >= 1 && o <= 8 {
			info.Orientation = int(o)
		}
	}
	var when, offset string
	if e, ok := ifd0[tagDateTime]; ok {
		when = t.ascii(e)
	}
	if e, ok := ifd0[tagExifIFD]; ok {
		if off, ok := t.uint(e); ok {
			if exif, ok := t.ifd(off); ok {
				if e, ok := exif[tagDateTimeOriginal]; ok {
					when = t.ascii(e)
				}
				if e, ok := exif[tagOffsetTimeOrig]; ok {
					offset = t.ascii(e)
				}
			}
		}
	}
	info.CapturedAt = exifTime(when, offset)
	if e, ok := ifd0[tagGPSIFD]; ok {
		if off, ok := t.uint(e); ok {
			if gps, ok := t.ifd(off); ok {
				lat, okLat := t.degrees(gps[tagGPSLatitude], t.ascii(gps[tagGPSLatitudeRef]), "S", 90)
				lng, okLng := t.degrees(gps[tagGPSLongitude], t.ascii(gps[tagGPSLongitudeRef]), "W", 180)
				if okLat && okLng {
					info.Lat, info.Lng = &lat, &lng
				}
			}
		}
	}
	return info, nil
}

// ifd reads the entries of the IFD at off, by tag.
func (t tiff) ifd(off uint32) (map[uint16]entry, bool) {
	if uint64(off)+2 > uint64(len(t.b)) {
		return nil, false
	}
	n := int(t.order.Uint16(t.b[off:]))
	if n > maxIFDEntries || uint64(off)+2+uint64(n)*12 > uint64(len(t.b)) {
		return nil, false
	}
	entries := make(map[uint16]entry, n)
	for i := range n {
		p := int(off) + 2 + i*12
		tag, typ, count := t.order.Uint16(t.b[p:]), t.order.Uint16(t.b[p+2:]), t.order.Uint32(t.b[p+4:])
		var unit uint64
		switch typ {
		case 1, tiffTypeASCII, 7:
			unit = 1
		case tiffTypeShort:
			unit = 2
		case tiffTypeLong:
			unit = 4
		case tiffTypeRational:
			unit = 8
		default:
			continue
		}
		size := unit * uint64(count)
		var value []byte
		if size <= 4 {
			value = t.b[p+8 : p+8+int(size)]
		} else {
			voff := uint64(t.order.Uint32(t.b[p+8:]))
			if voff+size > uint64(len(t.b)) {
				continue
			}
			value = t.b[voff : voff+size]
		}
		entries[tag] = entry{typ: typ, count: count, value: value}
	}
	return entries, true
}

func (t tiff) uint(e entry) (uint32, bool) {
	switch {
	case e.typ == tiffTypeShort && e.count >= 1:
		return uint32(t.order.Uint16(e.value)), true
	case e.typ == tiffTypeLong && e.count >= 1:
		return t.order.Uint32(e.value), true
	}
	return 0, false
}

func (t tiff) ascii(e entry) string {
	if e.typ != tiffTypeASCII {
		return ""
	}
	s, _, _ := strings.Cut(string(e.value), "\x00")
	return strings.TrimSpace(s)
}

// degrees reads a GPS coordinate (degrees, minutes, seconds as rationals), negative for the
// negative hemisphere, within ±limit.
func (t tiff) degrees(e entry, ref, negative string, limit float64) (float64, bool) {
	if e.typ != tiffTypeRational || e.count != 3 || len(e.value) != 24 {
		return 0, false
	}
	var v [3]float64
	for i := range 3 {
		num, den := t.order.Uint32(e.value[i*8:]), t.order.Uint32(e.value[i*8+4:])
		if den == 0 {
			return 0, false
		}
		v[i] = float64(num) / float64(den)
	}
	d := v[0] + v[1]/60 + v[2]/3600
	if ref == negative {
		d = -d
	}
	if math.IsNaN(d) || math.Abs(d) > limit {
		return 0, false
	}
	return d, true
}

// exifTime reads an EXIF date ("2006:01:02 15:04:05") with its offset ("+02:00") if known. EXIF
// times carry no zone unless OffsetTimeOriginal is there; without one the time is taken as UTC.
func exifTime(when, offset string) *time.Time {
	if when == "" {
		return nil
	}
	layout, value := "2006:01:02 15:04:05", when
	if len(offset) == 6 && (offset[0] == '+' || offset[0] == '-') {
		layout, value = layout+"-07:00", when+offset
	}
	t, err := time.Parse(layout, value)
	if err != nil || t.Year() < 1900 || t.Year() > 9999 {
		return nil
	}
	t = t.UTC()
	return &t
}
