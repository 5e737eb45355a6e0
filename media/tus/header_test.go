package tus

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/forwarded"
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
		if err != nil || ck.Algorithm != tc.alg {
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
			if len(ck.Sum) != checksumAlgorithms[ck.Algorithm].size {
				t.Fatalf("checksum %q: digest of %d bytes", sum, len(ck.Sum))
			}
		}
		r := &http.Request{Header: http.Header{"Content-Type": {contentType}}}
		if err := requireOffsetStream(r); err == nil && !strings.Contains(strings.ToLower(contentType), offsetStream) {
			t.Fatalf("Content-Type %q taken as %s", contentType, offsetStream)
		}
		if p := forwarded.Proto(proto); p != "" && p != "http" && p != "https" {
			t.Fatalf("X-Forwarded-Proto %q read as %q", proto, p)
		}
		if h := forwarded.HostValue(host); h != "" {
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
