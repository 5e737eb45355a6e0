package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	// Time zones are checked and used from Go's own copy of the database, so that a branch's zone
	// means the same on every machine, the distroless image included.
	_ "time/tzdata"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/i18n"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/text/currency"
)

// Locales are the languages the product speaks (i18n's catalogues), as users.locale holds them
// (its CHECK lists the same): English and Simplified Chinese.
var Locales = i18n.Languages

// Defaults of a branch created without them (the columns' defaults in migration 00012).
const (
	DefaultTimeZone = "UTC"
	DefaultCurrency = "CNY"
)

// ValidateLocale checks a user's language: one of Locales, or "" to follow the browser's.
func ValidateLocale(locale string) error {
	if locale == "" || i18n.Supported(locale) {
		return nil
	}
	return fieldsync.InvalidField("locale", "locale must be one of %s, or empty for the browser's language.", strings.Join(Locales, ", "))
}

// ValidateTimeZone checks a branch's time zone: an IANA name Go's time zone database knows
// (Asia/Shanghai, Europe/Lisbon, UTC). "Local" and abbreviations (CST) are refused: they mean
// different things on different machines.
func ValidateTimeZone(name string) error {
	bad := fieldsync.InvalidField("time_zone", "time_zone must be an IANA time zone name, such as Asia/Shanghai or UTC.")
	if name == "" || len(name) > 64 || name == "Local" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return bad
	}
	if _, err := time.LoadLocation(name); err != nil {
		return bad
	}
	return nil
}

// ValidateCurrency checks a branch's currency: an ISO 4217 code in capitals (CNY, EUR).
func ValidateCurrency(code string) error {
	bad := fieldsync.InvalidField("currency", "currency must be an ISO 4217 code in capitals, such as CNY or EUR.")
	if len(code) != 3 || strings.ToUpper(code) != code {
		return bad
	}
	u, err := currency.ParseISO(code)
	if err != nil || u.String() != code || code == "XXX" {
		return bad
	}
	return nil
}

// NewBranch is what an administrator gives to create a branch. An empty TimeZone or Currency is
// the default (UTC, CNY).
type NewBranch struct {
	Name     string
	TimeZone string
	Currency string
}

func (nb *NewBranch) validate() error {
	if err := validateText("name", nb.Name, true, 200); err != nil {
		return err
	}
	if nb.TimeZone == "" {
		nb.TimeZone = DefaultTimeZone
	}
	if nb.Currency == "" {
		nb.Currency = DefaultCurrency
	}
	if err := ValidateTimeZone(nb.TimeZone); err != nil {
		return err
	}
	return ValidateCurrency(nb.Currency)
}

// SetBranchFormats changes a branch's time zone and currency; an empty one is left as it is. A
// branch that does not exist is branch_not_found.
func (s *Service) SetBranchFormats(ctx context.Context, branchID uuid.UUID, timeZone, cur string) (*Branch, error) {
	if timeZone != "" {
		if err := ValidateTimeZone(timeZone); err != nil {
			return nil, err
		}
	}
	if cur != "" {
		if err := ValidateCurrency(cur); err != nil {
			return nil, err
		}
	}
	var b Branch
	err := s.db.QueryRow(ctx, `
		UPDATE branches SET time_zone = coalesce(nullif($2, ''), time_zone), currency = coalesce(nullif($3, ''), currency)
		WHERE id = $1 RETURNING `+branchColumns, branchID, timeZone, cur).
		Scan(&b.ID, &b.Name, &b.TimeZone, &b.Currency, &b.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fieldsync.Errorf(fieldsync.ENOTFOUND, "branch_not_found", "No branch has id %s.", branchID)
	}
	if err != nil {
		return nil, fmt.Errorf("set formats of branch %s: %w", branchID, err)
	}
	return &b, nil
}

// SetUserLocale sets the language a user reads the product in; "" follows the browser's. A user
// that does not exist is user_not_found.
func (s *Service) SetUserLocale(ctx context.Context, userID uuid.UUID, locale string) error {
	if err := ValidateLocale(locale); err != nil {
		return err
	}
	tag, err := s.db.Exec(ctx, `UPDATE users SET locale = nullif($2, '') WHERE id = $1`, userID, locale)
	if err != nil {
		return fmt.Errorf("set locale of user %s: %w", userID, err)
	}
	if tag.RowsAffected() == 0 {
		return fieldsync.Errorf(fieldsync.ENOTFOUND, "user_not_found", "No user has id %s.", userID)
	}
	return nil
}

// Preferences are how a user reads the product: their language ("" for the browser's), and their
// branch's time zone and currency (UTC and CNY for users of no branch).
type Preferences struct {
	Locale   string
	TimeZone string
	Currency string
}

// Location is the time zone of the preferences; UTC if it cannot be loaded (it was checked when
// set, so only a time zone database older than the one that checked it fails).
func (p Preferences) Location() *time.Location {
	if loc, err := time.LoadLocation(p.TimeZone); err == nil {
		return loc
	}
	return time.UTC
}

// FindPreferences returns userID's preferences; user_not_found if there is no such user.
func (s *Service) FindPreferences(ctx context.Context, userID uuid.UUID) (*Preferences, error) {
	p := &Preferences{}
	err := s.db.QueryRow(ctx, `
		SELECT coalesce(u.locale, ''), coalesce(b.time_zone, $2), coalesce(b.currency, $3)
		FROM users u LEFT JOIN branches b ON b.id = u.branch_id WHERE u.id = $1`, userID, DefaultTimeZone, DefaultCurrency).
		Scan(&p.Locale, &p.TimeZone, &p.Currency)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fieldsync.Errorf(fieldsync.ENOTFOUND, "user_not_found", "No user has id %s.", userID)
	}
	if err != nil {
		return nil, fmt.Errorf("read preferences of user %s: %w", userID, err)
	}
	return p, nil
}
