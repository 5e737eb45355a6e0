// Package imagebomb makes small image files that declare huge images, for the tests and
// benchmarks of thumbnail processing: what a black-box probe sent to blow the server's memory.
// Nothing in it is used by the server.
package imagebomb

import (
	"bytes"
	"compress/zlib"
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
	var idat bytes.Buffer
	z, _ := zlib.NewWriterLevel(&idat, zlib.BestCompression)
	row := make([]byte, 1+w*8) // filter type 0, then the pixels
	for range h {
		_, _ = z.Write(row)
	}
	_ = z.Close()
	chunk(&out, "IDAT", idat.Bytes())
	chunk(&out, "IEND", nil)
	return out.Bytes()
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
