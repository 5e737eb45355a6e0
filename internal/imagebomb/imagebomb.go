// Package imagebomb makes small image files that declare huge images, for the tests and
// benchmarks of thumbnail processing: what a black-box probe sent to blow the server's memory.
// Nothing in it is used by the server.
package imagebomb

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
)

// PNG returns a w×h PNG of 16 bits a channel, RGBA (color type 6), all zero: image/png decodes
// it to an *image.NRGBA64 of 8 bytes a pixel, w*h*8 bytes, from a file of about a thousandth of
// that (zeros compress well).
func PNG(w, h int) []byte {
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 16, 6, 0, 0, 0) // bit depth, color type RGBA, deflate, no filter method, not interlaced
	chunk(&out, "IHDR", ihdr)
	// Every row is its filter byte (0) and its zero pixels: the image data is zeros only.
	idat := zlibZeros(h * (1 + w*8))
	chunk(&out, "IDAT", idat)
	chunk(&out, "IEND", nil)
	return out.Bytes()
}

// zlibZeros returns a zlib stream of n zero bytes, made in milliseconds rather than by deflating
// all n (hundreds of megabytes: 20 s under the race detector). A mebibyte of zeros is deflated
// once, by a fresh writer flushed to a byte boundary, so its blocks refer to nothing before them
// and may be repeated; a final empty block and the Adler-32 of n zeros (a = 1, b = n) end it.
func zlibZeros(n int) []byte {
	const unit = 1 << 20
	deflate := func(size int) []byte {
		var b bytes.Buffer
		fw, _ := flate.NewWriter(&b, flate.BestCompression)
		_, _ = fw.Write(make([]byte, size))
		_ = fw.Flush()
		return b.Bytes()
	}
	out := []byte{0x78, 0xDA} // zlib header: deflate, 32 KiB window, best compression
	full := deflate(unit)
	left := n
	for ; left >= unit; left -= unit {
		out = append(out, full...)
	}
	if left > 0 {
		out = append(out, deflate(left)...)
	}
	out = append(out, 0x03, 0x00) // a final, empty block of fixed codes
	return binary.BigEndian.AppendUint32(out, uint32(n%65521)<<16|1)
}

func chunk(out *bytes.Buffer, typ string, data []byte) {
	_ = binary.Write(out, binary.BigEndian, uint32(len(data)))
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	out.WriteString(typ)
	out.Write(data)
	_ = binary.Write(out, binary.BigEndian, crc.Sum32())
}

// ProgressiveJPEG returns a w×h progressive JPEG, three components at full resolution (4:4:4),
// holding only its first scan (the DC coefficients, all zero: a bit a block): image/jpeg keeps a
// 4-byte coefficient for every sample (w*h*12 bytes) besides the w*h*3-byte image, from a file
// of w*h*3/512 bytes.
func ProgressiveJPEG(w, h int) []byte {
	var out bytes.Buffer
	out.Write([]byte{0xFF, 0xD8}) // SOI
	// DQT: table 0, every step 1.
	segment(&out, 0xDB, append([]byte{0}, bytes.Repeat([]byte{1}, 64)...))
	// SOF2 (progressive DCT): 8 bits, h, w, three components sampled 1×1 with table 0.
	sof := []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 3}
	for id := byte(1); id <= 3; id++ {
		sof = append(sof, id, 0x11, 0)
	}
	segment(&out, 0xC2, sof)
	// DHT: DC table 0 with one code, "0", for category 0 (a difference of zero).
	dht := []byte{0x00}
	counts := make([]byte, 16)
	counts[0] = 1
	dht = append(append(dht, counts...), 0)
	segment(&out, 0xC4, dht)
	// SOS: the three components interleaved, DC only (Ss = Se = 0), first pass (Ah = Al = 0).
	segment(&out, 0xDA, []byte{3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 0, 0})
	blocks := ((w + 7) / 8) * ((h + 7) / 8) * 3
	out.Write(make([]byte, (blocks+7)/8))
	out.Write([]byte{0xFF, 0xD9}) // EOI
	return out.Bytes()
}

func segment(out *bytes.Buffer, marker byte, data []byte) {
	out.Write([]byte{0xFF, marker, byte((len(data) + 2) >> 8), byte(len(data) + 2)})
	out.Write(data)
}
