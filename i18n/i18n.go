// Package i18n is the product's languages: message catalogues (English and Simplified Chinese),
// the choice of a language from a person's preference or their browser's, and the formats of
// times (in a branch's time zone) and amounts (in a branch's currency). The console's pages and
// the notifications' texts both print through a Printer, so a person reads one language and one
// format everywhere.
package i18n

import (
	"fmt"
	"math"
	"strings"
	"time"

	"golang.org/x/text/currency"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/number"
)

// The languages there are catalogues for, by their BCP 47 tags. English is the fallback.
const (
	English           = "en"
	SimplifiedChinese = "zh-CN"
)

// Languages are the tags of the catalogues, the fallback first.
var Languages = []string{English, SimplifiedChinese}

var (
	tags    = []language.Tag{language.English, language.MustParse("zh-Hans-CN")}
	matcher = language.NewMatcher(tags)
)

// Match chooses the language of a person: preference (a tag they chose, "" for none) when there
// is a catalogue for it, else the best of the browser's Accept-Language header, else English.
// It returns one of Languages.
func Match(preference, acceptLanguage string) string {
	if preference != "" {
		if t, err := language.Parse(preference); err == nil {
			if _, i, c := matcher.Match(t); c >= language.High {
				return Languages[i]
			}
		}
	}
	accept, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(accept) == 0 {
		return English
	}
	_, i, c := matcher.Match(accept...)
	if c == language.No {
		return English
	}
	return Languages[i]
}

// Supported reports whether lang is one of Languages (as stored in a preference).
func Supported(lang string) bool { return lang == English || lang == SimplifiedChinese }

// Printer prints messages, times and amounts for one person: in their language, times in loc
// (the branch's time zone), amounts in currency (the branch's, an ISO 4217 code).
type Printer struct {
	lang     string
	cat      map[string]string
	tag      language.Tag
	num      *message.Printer
	loc      *time.Location
	currency currency.Unit
	scale    int
}

// New returns a printer for lang (one of Languages; anything else is English), loc (nil: UTC)
// and currency (an ISO 4217 code; an unknown or empty one prints bare numbers of two decimals).
func New(lang string, loc *time.Location, currencyCode string) *Printer {
	if !Supported(lang) {
		lang = English
	}
	if loc == nil {
		loc = time.UTC
	}
	p := &Printer{lang: lang, cat: catalogues[lang], loc: loc, scale: 2}
	p.tag = tags[0]
	if lang == SimplifiedChinese {
		p.tag = tags[1]
	}
	p.num = message.NewPrinter(p.tag)
	if cur, err := currency.ParseISO(currencyCode); err == nil {
		p.currency = cur
		p.scale, _ = currency.Standard.Rounding(cur)
	}
	return p
}

// Lang is the printer's language tag, for an HTML lang attribute or a stored preference.
func (p *Printer) Lang() string { return p.lang }

// Location is the time zone times are printed in.
func (p *Printer) Location() *time.Location { return p.loc }

// T prints the message key of the catalogue with args (fmt verbs). A key missing from the
// language's catalogue falls back to English's, and a key missing there prints itself, so a
// slip shows on the page instead of failing it; TestCataloguesAgree keeps both complete.
func (p *Printer) T(key string, args ...any) string {
	format, ok := p.cat[key]
	if !ok {
		if format, ok = catalogues[English][key]; !ok {
			return key
		}
	}
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}

// Time prints an instant as a date and time of the day, in the printer's time zone with its
// abbreviation (2026-12-01 14:05 CST). The zero time prints as "".
func (p *Printer) Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(p.loc).Format("2006-01-02 15:04 MST")
}

// Date prints the day of an instant in the printer's time zone.
func (p *Printer) Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(p.loc).Format(time.DateOnly)
}

// Ago prints how long ago something happened, from d, in whole seconds, minutes, hours or days.
func (p *Printer) Ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return p.T("ago.seconds", int(max(d, 0)/time.Second))
	case d < time.Hour:
		return p.T("ago.minutes", int(d/time.Minute))
	case d < 48*time.Hour:
		return p.T("ago.hours", int(d/time.Hour))
	}
	return p.T("ago.days", int(d/(24*time.Hour)))
}

// Money prints an amount given in minor units (cents, fen) in the printer's currency, with its
// symbol and the language's grouping: ¥1,234.50 (zh-CN: ￥1,234.50).
func (p *Printer) Money(minor int64) string {
	amount := float64(minor) / math.Pow10(p.scale)
	digits := p.num.Sprint(number.Decimal(amount, number.Scale(p.scale)))
	if p.currency == (currency.Unit{}) {
		return digits
	}
	symbol := p.num.Sprint(currency.Symbol(p.currency))
	if strings.HasPrefix(digits, "-") {
		return "-" + symbol + digits[1:]
	}
	return symbol + digits
}

// ParseMoney reads an amount typed in major units (1234.5, 1,234.50) as minor units of the
// printer's currency; ok is false for anything else, or more decimals than the currency has.
func (p *Printer) ParseMoney(s string) (minor int64, ok bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > p.scale || strings.HasPrefix(whole, "-") {
		return 0, false
	}
	var n int64
	for _, r := range whole + frac + strings.Repeat("0", p.scale-len(frac)) {
		if r < '0' || r > '9' || n > (math.MaxInt64-9)/10 {
			return 0, false
		}
		n = n*10 + int64(r-'0')
	}
	return n, true
}
