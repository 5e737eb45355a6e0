package sync

import (
	"strings"
	"unicode/utf8"
)

// CleanFileName makes a client's file name fit a document, whether it came in a push
// (document.file_name) or with an upload (Upload-Metadata filename): valid UTF-8, no directory
// part (before the last / or \), no control characters (CR, LF, NUL among them: the name goes
// into Content-Disposition), at most 255 characters, no spaces around. It returns "" for a name
// with nothing left.
func CleanFileName(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	for utf8.RuneCountInString(name) > 255 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return strings.TrimSpace(name)
}
