package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"slices"

	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/google/uuid"
)

// photo is a document photographed on the device: its record is created by push (status
// pending_upload) and its bytes wait here until the server holds the record, then go up with tus.
type photo struct {
	doc  uuid.UUID
	name string
	data []byte
	// created: the server took the document's create, so its bytes may go up.
	created bool
	// upload is the tus upload under way, kept across interruptions: Resume asks the server how
	// much it holds and sends the rest.
	upload *client.Upload
	// tries counts the attempts that ended in an interruption.
	tries int
}

// photograph takes a photo of a claim document: a small real JPEG (a sheet of paper with lines of
// "text" on a desk, with sensor noise), different every time.
func photograph(rng *rand.Rand) []byte {
	const w, h = 240, 180
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	desk := color.RGBA{uint8(80 + rng.IntN(60)), uint8(50 + rng.IntN(40)), uint8(30 + rng.IntN(30)), 255}
	x0, y0 := 20+rng.IntN(30), 10+rng.IntN(20)
	x1, y1 := w-20-rng.IntN(30), h-10-rng.IntN(20)
	for y := range h {
		for x := range w {
			c := desk
			if x >= x0 && x < x1 && y >= y0 && y < y1 {
				c = color.RGBA{235, 235, 228, 255}
				// Lines of text: dark runs on every eighth row band.
				if (y-y0)%12 >= 8 && (y-y0)%12 < 10 && x > x0+8 && x < x1-8 && (x/5+y)%7 != 0 {
					c = color.RGBA{40, 40, 60, 255}
				}
			}
			n := rng.IntN(24) - 12
			img.Set(x, y, color.RGBA{clamp(int(c.R) + n), clamp(int(c.G) + n), clamp(int(c.B) + n), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		panic(err) // encoding to memory does not fail
	}
	return buf.Bytes()
}

func clamp(v int) uint8 { return uint8(max(0, min(255, v))) }

// takePhoto photographs a document of kind for the claim (and task) and queues both: the create of
// its record now, its bytes for when the server holds the record. The record declares the size
// and SHA-256 of the bytes, so the server refuses an upload that arrives damaged.
func (d *Device) takePhoto(rng *rand.Rand, claimID, taskID uuid.UUID, kind string) uuid.UUID {
	data := photograph(rng)
	sum := sha256.Sum256(data)
	id := uuid.Must(uuid.NewV7())
	name := kind + "-" + id.String()[:8] + ".jpg"
	fields := map[string]any{"claim_id": claimID, "kind": kind, "file_name": name, "content_type": "image/jpeg",
		"size_bytes": len(data), "sha256": hex.EncodeToString(sum[:])}
	if taskID != uuid.Nil {
		fields["task_id"] = taskID
	}
	d.queue("document", "create", id, fields)
	d.photos = append(d.photos, &photo{doc: id, name: name, data: data})
	return id
}

func (d *Device) dropPhoto(doc uuid.UUID) {
	d.photos = slices.DeleteFunc(d.photos, func(p *photo) bool { return p.doc == doc })
}

// upload sends the bytes of every photo whose document the server holds. An upload is created
// once and resumed after every interruption from the offset the server reports, so a photo on a
// bad line goes up piece by piece instead of starting over. An upload the server no longer knows
// (expired) is started again; a document that is gone (deleted, approved, not this user's) is
// dropped from the queue.
func (d *Device) upload(ctx context.Context) error {
	for i := 0; i < len(d.photos); {
		p := d.photos[i]
		if !p.created {
			i++ // its create is still in the outbox
			continue
		}
		err := d.send(ctx, p)
		switch {
		case err == nil:
			d.stats.add(func(t *Totals) { t.Uploads++ })
			d.photos = slices.Delete(d.photos, i, i+1)
		case uploadGone(err):
			d.log.Debug("photo abandoned", "document", p.doc, "err", err)
			d.stats.add(func(t *Totals) { t.UploadsAbandoned++ })
			d.photos = slices.Delete(d.photos, i, i+1)
		default:
			p.tries++
			return err
		}
	}
	return nil
}

func (d *Device) send(ctx context.Context, p *photo) error {
	if p.upload == nil {
		u, err := d.client.CreateUpload(ctx, p.doc, int64(len(p.data)), p.name)
		if err != nil {
			return err
		}
		p.upload = u
	} else if p.tries > 0 {
		d.stats.add(func(t *Totals) { t.UploadResumes++ })
	}
	err := d.client.Resume(ctx, p.upload, bytes.NewReader(p.data), d.cfg.ChunkSize)
	var e *client.Error
	if errors.As(err, &e) && (e.Code == "upload_expired" || e.Code == "upload_not_found" || e.Code == "upload_too_fragmented") {
		p.upload = nil // the server dropped the upload: start a new one next time
	}
	return err
}

// uploadGone reports whether err means the document can no longer take this photo.
func uploadGone(err error) bool {
	var e *client.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case "document_not_found", "document_deleted", "document_approved", "document_already_uploaded", "forbidden",
		"size_mismatch", "sha256_mismatch", "unsupported_content_type":
		return true
	}
	return false
}
