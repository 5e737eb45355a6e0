package sync

import (
	"strings"
	"testing"
)

// The feed's tokens are the event stream's event ids (Last-Event-ID): their form is a contract.
func TestFeedTokens(t *testing.T) {
	c := FeedCursor{h: 1234567}
	h, err := parseFeedToken(feedToken(c.h, position{xid: 1234570, version: 89}))
	if err != nil || h != c.h {
		t.Fatalf("round trip: %d, %v", h, err)
	}
	for _, bad := range []string{"", "12", "1-2", "a-1-2", "1-b-2", "1--1-2", "-1-2-3", "1-2-3-4", strings.Repeat("9", 81) + "-1-1",
		"99999999999999999999999-1-1"} {
		if _, err := parseFeedToken(bad); err == nil {
			t.Errorf("parseFeedToken(%q) accepted", bad)
		}
	}
}

func TestParseSnapshot(t *testing.T) {
	for text, want := range map[string]snapshot{
		"100:105:":           {xmin: 100},
		"100:105:100,103":    {xmin: 100, running: []string{"100", "103"}},
		"7612:7612:":         {xmin: 7612},
		"7612:7640:7612,763": {xmin: 7612, running: []string{"7612", "763"}},
	} {
		got, err := parseSnapshot(text)
		if err != nil || got.xmin != want.xmin || strings.Join(got.running, ",") != strings.Join(want.running, ",") {
			t.Errorf("parseSnapshot(%q) = %+v, %v; want %+v", text, got, err, want)
		}
	}
	if _, err := parseSnapshot("garbage"); err == nil {
		t.Error("parseSnapshot accepted garbage")
	}
}

func FuzzParseFeedToken(f *testing.F) {
	f.Add("1234-1240-56")
	f.Add("0-0-0")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseFeedToken(s)
		if err != nil {
			return
		}
		again, err := parseFeedToken(feedToken(h, position{xid: h, version: 1}))
		if err != nil || again != h {
			t.Errorf("%q parsed to horizon %d, which does not round-trip", s, h)
		}
	})
}
