package tus

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // tus's checksum extension names sha1; it checks transport, not trust
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strings"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
)

// The tus headers a client sends are parsed here, strictly: each parser refuses anything the
// protocol does not allow, with an EINVALID error naming the header.

// Limits of client-supplied tus headers.
const (
	maxMetadataHeader = 4096
	maxMetadataPairs  = 32
	maxMetadataValue  = 1024
)

// parseOffset reads Upload-Offset or Upload-Length: a non-negative decimal integer, digits only
// (no sign, no spaces), that fits an int64.
func parseOffset(header, v string) (int64, error) {
	if v == "" || len(v) > 19 {
		return 0, InvalidHeader(header, "%s must be a non-negative whole number.", header)
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, InvalidHeader(header, "%s must be a non-negative whole number.", header)
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, InvalidHeader(header, "%s is too large.", header)
		}
		n = n*10 + d
	}
	return n, nil
}

// parseMetadata reads Upload-Metadata: comma-separated pairs of a key and, after one space, its
// value in standard base64; a key may come alone (an empty value). Keys are unique, non-empty, and
// hold no spaces or commas. Values are UTF-8 text without NUL; a value that is not names its key
// in the error's details ("field").
func parseMetadata(v string) (map[string]string, error) {
	md := map[string]string{}
	if strings.TrimSpace(v) == "" {
		return md, nil
	}
	if len(v) > maxMetadataHeader {
		return nil, InvalidHeader("Upload-Metadata", "Upload-Metadata is longer than %d bytes.", maxMetadataHeader)
	}
	for pair := range strings.SplitSeq(v, ",") {
		pair = strings.Trim(pair, " \t")
		key, value, hasValue := strings.Cut(pair, " ")
		if key == "" || !validMetadataKey(key) {
			return nil, InvalidHeader("Upload-Metadata", "Upload-Metadata has an invalid key.")
		}
		if _, dup := md[key]; dup {
			return nil, InvalidHeader("Upload-Metadata", "Upload-Metadata has key %q twice.", key)
		}
		if len(md) == maxMetadataPairs {
			return nil, InvalidHeader("Upload-Metadata", "Upload-Metadata has more than %d keys.", maxMetadataPairs)
		}
		var decoded []byte
		if hasValue {
			var err error
			if decoded, err = base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(value)); err != nil {
				return nil, InvalidHeader("Upload-Metadata", "The value of %q in Upload-Metadata is not base64.", key)
			}
			if len(decoded) > maxMetadataValue {
				return nil, InvalidHeader("Upload-Metadata", "The value of %q in Upload-Metadata is too long.", key)
			}
			// Values are kept as text (and JSON, which holds no NUL): they must be text.
			if !utf8.Valid(decoded) || bytes.IndexByte(decoded, 0) >= 0 {
				e := InvalidHeader("Upload-Metadata", "The value of %q in Upload-Metadata must be UTF-8 text without NUL characters.", key)
				e.Details["field"] = key
				return nil, e
			}
		}
		md[key] = string(decoded)
	}
	return md, nil
}

func validMetadataKey(k string) bool {
	if len(k) > 100 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f || c == ',' {
			return false
		}
	}
	return true
}

// formatMetadata writes md as an Upload-Metadata header, keys in the order given.
func formatMetadata(keys []string, md map[string]string) string {
	var b strings.Builder
	for _, k := range keys {
		v, ok := md[k]
		if !ok {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		if v != "" {
			b.WriteByte(' ')
			b.WriteString(base64.StdEncoding.EncodeToString([]byte(v)))
		}
	}
	return b.String()
}

// checksumAlgorithms are the algorithms of the checksum extension this server supports.
var checksumAlgorithms = map[string]struct {
	size int
	new  func() hash.Hash
}{
	"sha1":   {sha1.Size, sha1.New},
	"sha256": {sha256.Size, sha256.New},
}

// parseChecksum reads Upload-Checksum: an algorithm name, one space, and the digest in base64.
// An algorithm this server does not support is an error of its own (400 checksum_algorithm_unsupported).
func parseChecksum(v string) (*Checksum, error) {
	if v == "" {
		return nil, nil
	}
	alg, enc, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || alg == "" {
		return nil, InvalidHeader("Upload-Checksum", "Upload-Checksum must be an algorithm and a base64 digest.")
	}
	a, known := checksumAlgorithms[strings.ToLower(alg)]
	if !known {
		return nil, &fieldsync.Error{Kind: fieldsync.EINVALID, Code: "checksum_algorithm_unsupported",
			Message: "Upload-Checksum uses an algorithm this server does not support (sha1, sha256).", Details: map[string]any{"header": "Upload-Checksum"}}
	}
	sum, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(enc))
	if err != nil || len(sum) != a.size {
		return nil, InvalidHeader("Upload-Checksum", "The digest in Upload-Checksum is not a base64 %s digest.", strings.ToLower(alg))
	}
	return &Checksum{Algorithm: strings.ToLower(alg), New: a.new, Sum: sum}, nil
}

// InvalidHeader returns an EINVALID error of code invalid_header naming the header at fault.
func InvalidHeader(header, format string, args ...any) *fieldsync.Error {
	e := fieldsync.Errorf(fieldsync.EINVALID, "invalid_header", format, args...)
	e.Details = map[string]any{"header": header}
	return e
}
