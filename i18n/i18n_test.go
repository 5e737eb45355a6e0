package i18n

import (
	"strings"
	"testing"
	"time"
)

// TestCataloguesAgree holds every catalogue to the same keys and the same fmt verbs as English's.
func TestCataloguesAgree(t *testing.T) {
	for lang, cat := range catalogues {
		for key, format := range en {
			other, ok := cat[key]
			if !ok {
				t.Errorf("%s: no message %q", lang, key)
				continue
			}
			if verbs(other) != verbs(format) {
				t.Errorf("%s: %q has verbs %q, English %q", lang, key, verbs(other), verbs(format))
			}
		}
		for key := range cat {
			if _, ok := en[key]; !ok {
				t.Errorf("%s: %q is not in English's catalogue", lang, key)
			}
		}
	}
}

func verbs(s string) string {
	var out []string
	for i := 0; i < len(s)-1; i++ {
		if s[i] == '%' {
			out = append(out, s[i:i+2])
			i++
		}
	}
	return strings.Join(out, " ")
}

func TestMatch(t *testing.T) {
	cases := []struct{ pref, accept, want string }{
		{"", "", English},
		{"", "zh-CN,zh;q=0.9,en;q=0.8", SimplifiedChinese},
		{"", "zh", SimplifiedChinese},
		{"", "fr-FR,en;q=0.5", English},
		{"", "de", English},
		{"en", "zh-CN", English},
		{"zh-CN", "en-GB", SimplifiedChinese},
		{"xx-nonsense", "zh-Hans", SimplifiedChinese},
		{"", "not a header;;", English},
	}
	for _, c := range cases {
		if got := Match(c.pref, c.accept); got != c.want {
			t.Errorf("Match(%q, %q) = %q, want %q", c.pref, c.accept, got, c.want)
		}
	}
}

func TestFormats(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	at := time.Date(2026, 12, 1, 6, 5, 0, 0, time.UTC)
	en, zh := New(English, shanghai, "CNY"), New(SimplifiedChinese, shanghai, "CNY")
	if got := en.Time(at); got != "2026-12-01 14:05 CST" {
		t.Errorf("Time = %q", got)
	}
	if got := en.Money(123456789); got != "CN¥1,234,567.89" {
		t.Errorf("en Money = %q", got)
	}
	if got := zh.Money(-1250); got != "-￥12.50" {
		t.Errorf("zh Money = %q", got)
	}
	if got := New(English, nil, "JPY").Money(1500); got != "¥1,500" {
		t.Errorf("JPY Money = %q", got)
	}
	if got := zh.T("race.lost", zh.T("race.another"), zh.T("race.status.approved"), zh.Ago(3*time.Second)); got != "另一位审核员已批准此项（3 秒前）。本次未作任何更改。" {
		t.Errorf("zh race = %q", got)
	}
	for in, want := range map[string]int64{"1250": 125000, "1,250.5": 125050, "0.01": 1, " 7 ": 700} {
		if got, ok := en.ParseMoney(in); !ok || got != want {
			t.Errorf("ParseMoney(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "1.234", "abc", "1e5", "99999999999999999999"} {
		if _, ok := en.ParseMoney(in); ok {
			t.Errorf("ParseMoney(%q) accepted", in)
		}
	}
}
