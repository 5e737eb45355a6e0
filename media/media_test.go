package media

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
)

func TestParseOffset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"26214400", 26214400, true}, {"9223372036854775807", 1<<63 - 1, true},
		{"", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {" 1", 0, false}, {"1.0", 0, false}, {"0x10", 0, false},
		{"9223372036854775808", 0, false}, {"99999999999999999999", 0, false},
	} {
		got, err := parseOffset("Upload-Offset", tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseOffset(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseMetadata(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
		ok   bool
	}{
		{"", map[string]string{}, true},
		{"document_id NDI=,filename cGhvdG8uanBn", map[string]string{"document_id": "42", "filename": "photo.jpg"}, true},
		{"is_confidential, filename cGhvdG8uanBn", map[string]string{"is_confidential": "", "filename": "photo.jpg"}, true},
		{"a YQ==,a Yg==", nil, false},
		{"a not-base64!", nil, false},
		{"a YQ", nil, false}, // unpadded
		{"k\x01 YQ==", nil, false},
		{"filename AA==", nil, false},     // a NUL
		{"filename cGhvdG8A", nil, false}, // "photo" and a NUL
		{"content_type /w==", nil, false}, // not UTF-8
		{"filename 8J+Tty5qcGc=", map[string]string{"filename": "📷.jpg"}, true},
	} {
		got, err := parseMetadata(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseMetadata(%q): err %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && len(got) != len(tc.want) {
			t.Errorf("parseMetadata(%q) = %v, want %v", tc.in, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("parseMetadata(%q)[%q] = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
}

func TestParseChecksum(t *testing.T) {
	for _, tc := range []struct {
		in, alg, code string
	}{
		{"sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", "sha1", ""},
		{"sha256 n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", "sha256", ""},
		{"SHA256 n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", "sha256", ""},
		{"md5 1B2M2Y8AsgTpgAmY7PhCfg==", "", "checksum_algorithm_unsupported"},
		{"sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0", "", "invalid_header"},
		{"sha256 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", "", "invalid_header"}, // a sha1-sized digest
		{"sha1", "", "invalid_header"},
	} {
		ck, err := parseChecksum(tc.in)
		if tc.code != "" {
			if fieldsync.ErrorCode(err) != tc.code {
				t.Errorf("parseChecksum(%q): %v, want code %s", tc.in, err, tc.code)
			}
			continue
		}
		if err != nil || ck.algorithm != tc.alg {
			t.Errorf("parseChecksum(%q) = %+v, %v", tc.in, ck, err)
		}
	}
}

// FuzzTusHeaders throws arbitrary headers at every parser of a tus request's headers: none may
// panic; an accepted offset or length is exactly its digits; accepted metadata survives a round
// trip and holds only text (no NUL, valid UTF-8: it is stored as JSON), and its file name cleans
// to a bare name; an accepted checksum has the algorithm's digest size; X-Forwarded-Proto gives
// http, https or nothing, and X-Forwarded-Host a host or nothing.
func FuzzTusHeaders(f *testing.F) {
	f.Add("document_id NDI=,filename cGhvdG8uanBn", "sha256 n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", "1024", "application/offset+octet-stream", "https", "sync.example.com")
	f.Add("a,b YQ==", "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", "0", "Application/Offset+Octet-Stream; charset=x", "http, https", "a.example:8443, b")
	f.Add(",,", "md5 x", "-1", "text/plain", "gopher", "evil.example/path")
	f.Add("filename AA==", "", "00", "", "", "")                                                          // a NUL
	f.Add("filename /w==,content_type wyg=", "sha1", "18446744073709551616", ";", " HTTPS ,", "[::1]:80") // invalid UTF-8
	f.Add("filename Li5cZXZpbA0KbmFtZS5qcGc=", "sha256  x", "1 ", "application/offset+octet-stream ", "", "h\x00st")
	f.Fuzz(func(t *testing.T, metadata, sum, offset, contentType, proto, host string) {
		for _, h := range []string{"Upload-Offset", "Upload-Length"} {
			if n, err := parseOffset(h, offset); err == nil {
				if n < 0 || formatInt(n) != offset && !(len(offset) > 1 && offset[0] == '0') {
					t.Fatalf("parseOffset(%q) = %d", offset, n)
				}
			}
		}
		if md, err := parseMetadata(metadata); err == nil {
			keys := make([]string, 0, len(md))
			for k, v := range md {
				keys = append(keys, k)
				if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
					t.Fatalf("metadata %q: value %q of %q accepted", metadata, v, k)
				}
			}
			again, err := parseMetadata(formatMetadata(keys, md))
			if err != nil || len(again) != len(md) {
				t.Fatalf("metadata %q did not survive a round trip: %v %v", metadata, again, err)
			}
			for k, v := range md {
				if again[k] != v {
					t.Fatalf("metadata %q: %q became %q", metadata, v, again[k])
				}
			}
			name := sync.CleanFileName(md["filename"])
			if !utf8.ValidString(name) || strings.ContainsAny(name, "/\\\r\n\x00") || utf8.RuneCountInString(name) > 255 ||
				sync.CleanFileName(name) != name {
				t.Fatalf("filename %q cleaned to %q", md["filename"], name)
			}
		} else if fieldsync.ErrorCode(err) != "invalid_header" {
			t.Fatalf("parseMetadata(%q): %v", metadata, err)
		}
		if ck, err := parseChecksum(sum); err == nil && ck != nil {
			if len(ck.sum) != checksumAlgorithms[ck.algorithm].size {
				t.Fatalf("checksum %q: digest of %d bytes", sum, len(ck.sum))
			}
		}
		r := &http.Request{Header: http.Header{"Content-Type": {contentType}}}
		if err := requireOffsetStream(r); err == nil && !strings.Contains(strings.ToLower(contentType), offsetStream) {
			t.Fatalf("Content-Type %q taken as %s", contentType, offsetStream)
		}
		if p := forwardedProto(proto); p != "" && p != "http" && p != "https" {
			t.Fatalf("X-Forwarded-Proto %q read as %q", proto, p)
		}
		if h := forwardedHost(host); h != "" {
			if !strings.Contains(host, h) || strings.ContainsAny(h, "/?#@ ,\\") {
				t.Fatalf("X-Forwarded-Host %q read as %q", host, h)
			}
			if _, err := url.Parse("https://" + h + "/v1/uploads/x"); err != nil {
				t.Fatalf("X-Forwarded-Host %q gives no URL: %v", h, err)
			}
		}
	})
}

func formatInt(n int64) string {
	var b []byte
	if n == 0 {
		return "0"
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

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
