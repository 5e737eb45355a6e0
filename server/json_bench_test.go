package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// BenchmarkDecodePush decodes a push of 1,000 mutations, the protocol's most, through the one
// JSON decoder (UTF-8 check included).
func BenchmarkDecodePush(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"mutations":[`)
	for i := range 1000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":"%s","type":"task","op":"update","entity_id":"%s","base_version":3,"client_time":"2026-01-01T00:00:00Z","fields":{"completion_note":"%s","status":"completed"}}`,
			uuid.New(), uuid.New(), strings.Repeat("Done, all papers collected. ", 10))
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.Run("decodeJSON", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req pushRequest
			if err := decodeJSONFrom(bytes.NewReader(body), &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The baseline: encoding/json's Decoder straight on the body, as the decoder was before it
	// read the body whole to check its UTF-8 and name a bad value's field.
	b.Run("json.Decoder", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req pushRequest
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
