package media

import (
	"github.com/fieldsync/fieldsync"
	"github.com/gabriel-vasile/mimetype"
)

// allowedTypes are the document types accepted, by the type sniffed from the bytes, with the
// content type stored for each. HEIF is HEIC's container, which some phones label so.
//
// Sniffing uses github.com/gabriel-vasile/mimetype: maintained, no dependencies, reads only the
// first 3 KB, and knows HEIC/HEIF by their ftyp brands, which net/http.DetectContentType does not.
var allowedTypes = map[string]string{
	"image/jpeg":      "image/jpeg",
	"image/png":       "image/png",
	"image/heic":      "image/heic",
	"image/heif":      "image/heif",
	"application/pdf": "application/pdf",
}

// sniff returns the content type of a file from its first bytes, or an error of kind
// unsupported_media_type (415) if it is not a type documents may have. A client's declared type
// is never trusted: an executable named .jpg is refused here.
func sniff(head []byte) (string, error) {
	mt := mimetype.Detect(head)
	for m := mt; m != nil; m = m.Parent() {
		if ct, ok := allowedTypes[m.String()]; ok {
			return ct, nil
		}
	}
	return "", &fieldsync.Error{Kind: fieldsync.EMEDIATYPE, Code: "unsupported_content_type",
		Message: "The file is not a JPEG, PNG, HEIC or PDF; it was refused and removed.", Details: map[string]any{"detected": mt.String()}}
}
