package server

import (
	"strconv"
	"testing"
)

// TestRequestFramerFindsEveryHeaderBlock: the framer follows kept-alive streams through bodies
// of either framing, fed whole or a byte at a time, and flags only a header block that carries
// both Content-Length and Transfer-Encoding, never text inside a body that looks like one.
func TestRequestFramerFindsEveryHeaderBlock(t *testing.T) {
	lookalike := "x\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, c := range []struct {
		name      string
		stream    string
		ambiguous bool
	}{
		{"no body", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"a Content-Length body that looks like headers",
			"POST / HTTP/1.1\r\nContent-Length: " + itoa(len(lookalike)) + "\r\n\r\n" + lookalike + "GET / HTTP/1.1\r\n\r\n", false},
		{"a chunked body that looks like headers, with extensions and trailers",
			"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + hex(len(lookalike)) + ";ext=1\r\n" + lookalike + "\r\n0\r\nX-Trailer: 1\r\n\r\n" +
				"GET / HTTP/1.1\r\n\r\n", false},
		{"blank lines before a request", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", false},
		{"both lengths", "POST / HTTP/1.1\r\ncontent-length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"both lengths after a kept-alive request",
			"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", true},
	} {
		for _, split := range []bool{false, true} {
			var f requestFramer
			got := false
			if split {
				for i := range len(c.stream) {
					got = f.feed([]byte(c.stream[i:i+1])) || got
				}
			} else {
				got = f.feed([]byte(c.stream))
			}
			if got != c.ambiguous {
				t.Errorf("%s (a byte at a time: %v): ambiguous %v", c.name, split, got)
			}
			if !c.ambiguous && (f.state != framingHeaders || f.started) {
				t.Errorf("%s (a byte at a time: %v): lost its place (state %d)", c.name, split, f.state)
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
func hex(n int) string  { return strconv.FormatInt(int64(n), 16) }
