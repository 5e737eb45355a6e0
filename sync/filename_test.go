package sync_test

import (
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/sync"
)

func TestCleanFileName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"invoice.jpg", "invoice.jpg"},
		{"..\\evil\r\nname.jpg", "evilname.jpg"},
		{"../../etc/passwd", "passwd"},
		{"C:\\Users\\rep\\IMG_1.jpg", "IMG_1.jpg"},
		{"a\x00b\x7f.pdf", "ab.pdf"},
		{"  spaced.png  ", "spaced.png"},
		{"bad\xffutf8.jpg", "badutf8.jpg"},
		{"dir/", ""},
		{strings.Repeat("é", 300), strings.Repeat("é", 255)},
	} {
		if got := sync.CleanFileName(tc.in); got != tc.want {
			t.Errorf("CleanFileName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
