package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/google/uuid"
)

// Upload is one resumable (tus 1.0.0) upload of a document's bytes. Keep it (its URL) across
// connection losses and app restarts: Resume carries on from whatever the server holds.
type Upload struct {
	URL        string
	DocumentID uuid.UUID
	Size       int64
}

const tusVersion = "1.0.0"

// CreateUpload announces an upload of size bytes for the document (which the device created by
// push, status pending_upload).
func (c *Client) CreateUpload(ctx context.Context, documentID uuid.UUID, size int64, fileName string) (*Upload, error) {
	b64 := base64.StdEncoding.EncodeToString
	meta := "document_id " + b64([]byte(documentID.String()))
	if fileName != "" {
		meta += ",filename " + b64([]byte(fileName))
	}
	res, err := c.doRaw(ctx, func(token string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/uploads/", nil)
		if err != nil {
			return nil, err
		}
		tusHeaders(req, token)
		req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
		req.Header.Set("Upload-Metadata", meta)
		return req, nil
	})
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return nil, decodeError(res)
	}
	loc, err := res.Location()
	if err != nil {
		return nil, fmt.Errorf("upload created without a location: %w", err)
	}
	return &Upload{URL: loc.String(), DocumentID: documentID, Size: size}, nil
}

func tusHeaders(req *http.Request, token string) {
	req.Header.Set("Tus-Resumable", tusVersion)
	req.Header.Set("Authorization", "Bearer "+token)
}

// Offset asks the server how many bytes of the upload it holds.
func (c *Client) Offset(ctx context.Context, u *Upload) (int64, error) {
	res, err := c.doRaw(ctx, func(token string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, u.URL, nil)
		if err != nil {
			return nil, err
		}
		tusHeaders(req, token)
		return req, nil
	})
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusNoContent {
		return 0, decodeError(res)
	}
	return strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
}

// SendChunk sends data as the bytes at offset, with its SHA-256 so the server refuses a chunk
// damaged on the way (460). It returns the server's new offset.
func (c *Client) SendChunk(ctx context.Context, u *Upload, offset int64, data []byte) (int64, error) {
	sum := sha256.Sum256(data)
	res, err := c.doRaw(ctx, func(token string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u.URL, bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		tusHeaders(req, token)
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
		req.Header.Set("Upload-Checksum", "sha256 "+base64.StdEncoding.EncodeToString(sum[:]))
		return req, nil
	})
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		return 0, decodeError(res) // reads the body: the error's code is in it
	}
	_, _ = io.Copy(io.Discard, res.Body)
	return strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
}

// Resume sends the rest of the upload from file in chunks of chunkSize, starting from the offset
// the server reports. It returns when the server holds every byte, or with the first error: call
// it again later (a network loss is the normal case) and it carries on.
func (c *Client) Resume(ctx context.Context, u *Upload, file io.ReaderAt, chunkSize int) error {
	if chunkSize <= 0 {
		chunkSize = 1 << 20
	}
	offset, err := c.Offset(ctx, u)
	if err != nil {
		return err
	}
	buf := make([]byte, chunkSize)
	for offset < u.Size {
		n, err := file.ReadAt(buf[:min(int64(chunkSize), u.Size-offset)], offset)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read file at %d: %w", offset, err)
		}
		if offset, err = c.SendChunk(ctx, u, offset, buf[:n]); err != nil {
			return err
		}
	}
	return nil
}
