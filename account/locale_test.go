package account

import (
	"testing"

	"github.com/fieldsync/fieldsync"
)

func TestValidateFormats(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		check func(string) error
		value string
		ok    bool
	}{
		{"locale en", ValidateLocale, "en", true},
		{"locale zh-CN", ValidateLocale, "zh-CN", true},
		{"locale empty follows the browser", ValidateLocale, "", true},
		{"locale lower-case region", ValidateLocale, "zh-cn", false},
		{"locale unknown", ValidateLocale, "fr", false},
		{"zone Shanghai", ValidateTimeZone, "Asia/Shanghai", true},
		{"zone UTC", ValidateTimeZone, "UTC", true},
		{"zone Lisbon", ValidateTimeZone, "Europe/Lisbon", true},
		{"zone empty", ValidateTimeZone, "", false},
		{"zone Local means the machine's", ValidateTimeZone, "Local", false},
		{"zone unknown", ValidateTimeZone, "Mars/Olympus", false},
		{"zone path", ValidateTimeZone, "../../etc/passwd", false},
		{"zone control", ValidateTimeZone, "Asia/Shang\x00hai", false},
		{"currency CNY", ValidateCurrency, "CNY", true},
		{"currency EUR", ValidateCurrency, "EUR", true},
		{"currency lower case", ValidateCurrency, "cny", false},
		{"currency unknown", ValidateCurrency, "ABC", false},
		{"currency no currency", ValidateCurrency, "XXX", false},
		{"currency long", ValidateCurrency, "CNYY", false},
	} {
		err := tc.check(tc.value)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %q gave %v, want ok %v", tc.name, tc.value, err, tc.ok)
		}
		if err != nil && fieldsync.ErrorCode(err) != "invalid_value" {
			t.Errorf("%s: code %q, want invalid_value", tc.name, fieldsync.ErrorCode(err))
		}
	}
}
