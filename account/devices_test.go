package account

import "testing"

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"2.0.0", "2.0.0", 0},
		{"2.0", "2.0.0", 0},
		{"v2.1.0", "2.1.0", 0},
		{"2.1.0+42", "2.1.0", 0},
		{"1.9.9", "2.0.0", -1},
		{"2.10.0", "2.9.0", 1},
		{"10.0", "9.99.99", 1},
		{"2.1.0-beta.1", "2.1.0", -1},
		{"2.1.0", "2.1.0-rc.1", 1},
		{"2.1.0-beta.1", "2.0.0", 1},
		{"garbage", "0.0.1", -1},
		{"", "1.0", -1},
	} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestCheckAppVersion(t *testing.T) {
	t.Parallel()
	s := &Service{cfg: Config{MinAppVersion: map[string]string{"android": "2.0.0"}}}
	for _, tc := range []struct {
		platform, version string
		ok                bool
	}{
		{"android", "2.0.0", true},
		{"android", "2.0.1", true},
		{"android", "1.99", false},
		{"android", "", false},
		{"ios", "0.1", true}, // no minimum set
		{"web", "", true},
	} {
		if err := s.CheckAppVersion(tc.platform, tc.version); (err == nil) != tc.ok {
			t.Errorf("CheckAppVersion(%q, %q) = %v, want ok %v", tc.platform, tc.version, err, tc.ok)
		}
	}
}

func TestValidVersion(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{"2.4.0": true, "2": true, "v1.2": true, "1.2.3-beta+7": true,
		"": false, "abc": false, "1..2": false, "1.x": false} {
		if got := ValidVersion(v); got != want {
			t.Errorf("ValidVersion(%q) = %v, want %v", v, got, want)
		}
	}
}
