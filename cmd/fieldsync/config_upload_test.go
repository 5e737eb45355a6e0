package main

import (
	"strings"
	"testing"
	"time"
)

// TestUploadSettings: the upload server's settings have their documented defaults, and one out
// of range is named by serve's validation.
func TestUploadSettings(t *testing.T) {
	cfg, err := loadConfig(lookupFrom(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UploadsPerUser != 4 || cfg.UploadsPerDevice != 2 || cfg.UploadBuffers != 64 || cfg.UploadBufferWait != 10*time.Second ||
		cfg.BodyIdleTimeout != 30*time.Second || cfg.PublicURL != "" || cfg.S3.PublicEndpoint != "" {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg, err = loadConfig(lookupFrom(map[string]string{
		"FIELDSYNC_UPLOADS_PER_USER":   "0",
		"FIELDSYNC_UPLOAD_BUFFERS":     "0",
		"FIELDSYNC_UPLOAD_BUFFER_WAIT": "-1s",
		"FIELDSYNC_BODY_IDLE_TIMEOUT":  "10ms",
		"FIELDSYNC_PUBLIC_URL":         "sync.example.com",
		"FIELDSYNC_S3_PUBLIC_ENDPOINT": "https://files.example.com/bucket",
	}))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.validateServe()
	for _, name := range []string{"FIELDSYNC_UPLOADS_PER_USER", "FIELDSYNC_UPLOAD_BUFFERS", "FIELDSYNC_UPLOAD_BUFFER_WAIT",
		"FIELDSYNC_BODY_IDLE_TIMEOUT", "FIELDSYNC_PUBLIC_URL", "FIELDSYNC_S3_PUBLIC_ENDPOINT"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}
