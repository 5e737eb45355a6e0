-- Why a document's file has no thumbnail, when processing looked at it and made none:
-- image_too_large (decoding it would take more memory than FIELDSYNC_MAX_DECODE_BYTES allows, or
-- more pixels than are decoded at all), image_unreadable (not decodable as the image its bytes
-- claimed). Empty otherwise. The document stays usable (reviewable, downloadable) either way. Like
-- every column of a document not hidden by the sync engine, it syncs to the devices that see it.

-- +goose Up
ALTER TABLE documents ADD COLUMN processing_error text NOT NULL DEFAULT ''
    CHECK (processing_error IN ('', 'image_too_large', 'image_unreadable'));

-- +goose Down
ALTER TABLE documents DROP COLUMN processing_error;
