package notify

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		part, whole int64
		want        string
	}{{1, 2, "50%"}, {120000, 50000, "240%"}, {1, 3, "33%"}, {2, 3, "67%"}, {1 << 50, 1 << 49, "200%"}} {
		if got := percent(tc.part, tc.whole); got != tc.want {
			t.Errorf("percent(%d, %d) = %q, want %q", tc.part, tc.whole, got, tc.want)
		}
	}
}

func TestClip(t *testing.T) {
	if got := clip("  short  ", 10); got != "short" {
		t.Errorf("clip kept %q", got)
	}
	got := clip(strings.Repeat("é", 300), 240)
	if n := utf8.RuneCountInString(got); n != 240 || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) {
		t.Errorf("clip to 240: %d characters, %q...", n, got[:10])
	}
}

func TestFitPayloadCutsAtACharacterBoundary(t *testing.T) {
	data := map[string]string{"notification_id": strings.Repeat("x", 36), "kind": "document_rejected"}
	for _, body := range []string{strings.Repeat("a", 5000), strings.Repeat("𝄞", 2000), strings.Repeat("日本", 1500)} {
		title, got := fitPayload("Document rejected", body, data, maxPayload)
		if size := payloadSize(title, got, data); size > maxPayload {
			t.Errorf("payload %d bytes, want at most %d", size, maxPayload)
		}
		if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || title != "Document rejected" {
			t.Errorf("fitted body is not valid text ending in an ellipsis, or the title was cut: %q", title)
		}
		if payloadSize(title, got, data) < maxPayload-8 {
			t.Errorf("cut more than needed: %d bytes", payloadSize(title, got, data))
		}
	}
	// A title alone too long loses its body first, then is cut itself.
	title, body := fitPayload(strings.Repeat("t", 5000), "body", nil, 100)
	if body != "" || len(title) > 100 || !strings.HasSuffix(title, "…") {
		t.Errorf("got title of %d bytes and body %q", len(title), body)
	}
	// A payload within the limit is left alone.
	if title, body := fitPayload("t", "b", data, maxPayload); title != "t" || body != "b" {
		t.Errorf("changed a small payload: %q %q", title, body)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	prev := time.Duration(0)
	for attempt := 1; attempt <= 30; attempt++ {
		d := backoff(attempt)
		base := maxBackoff
		if attempt <= 12 {
			base = min(time.Second<<(attempt-1), maxBackoff)
		}
		if d < base*9/10 || d > base*11/10 {
			t.Errorf("attempt %d: backoff %s, want %s ± 10%%", attempt, d, base)
		}
		if attempt <= 11 && d <= prev*7/10 {
			t.Errorf("attempt %d: backoff %s after %s", attempt, d, prev)
		}
		prev = d
	}
	var total time.Duration
	for attempt := 1; attempt < 25; attempt++ {
		total += min(time.Second<<min(attempt-1, 12), maxBackoff)
	}
	if total < 6*time.Hour || total > 10*time.Hour {
		t.Errorf("25 attempts span %s; the doc says about 7 hours", total)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"0":                             0,
		"soon":                          0,
		"Mon, 23 Nov 2026 08:00:30 GMT": 30 * time.Second,
		"Mon, 23 Nov 2026 07:00:00 GMT": 0,
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", h, got, want)
		}
	}
}
