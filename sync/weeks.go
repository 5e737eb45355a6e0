package sync

import (
	"context"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/jackc/pgx/v5"
)

// maxWeeks caps the weeks PaidPerWeek answers for: two years.
const maxWeeks = 105

// WeekPaid is one week of a branch's payouts: the claims paid in it and what they paid, and of
// those whose premium is known, what they paid and their premiums (payout against premium).
// Amounts are in minor units.
type WeekPaid struct {
	// Start is the week's Monday, 00:00 in the branch's time zone.
	Start             time.Time `json:"start"`
	Claims            int64     `json:"claims"`
	Amount            int64     `json:"amount"`
	AmountWithPremium int64     `json:"amount_with_premium"`
	Premium           int64     `json:"premium"`
}

// PaidPerWeek returns the payouts of the caller's branch in period, week by week: weeks start on
// Monday in the branch's time zone, the first and last are cut to the period, and every week is
// there, with zeros when nothing was paid. It reads what Figures' paid figures read, split by week
// (claims paid, by paid_at). Processors and managers only; a period longer than two years is
// invalid_value.
func (e *Engine) PaidPerWeek(ctx context.Context, id *fieldsync.Identity, period Period) ([]WeekPaid, error) {
	if err := requireRole(id, screenRoles...); err != nil {
		return nil, err
	}
	p, err := period.resolve(e.NowFunc())
	if err != nil {
		return nil, err
	}
	if p.To.Sub(p.From) > maxWeeks*7*24*time.Hour {
		return nil, fieldsync.InvalidField("to", "A period of weeks may be at most %d weeks long.", maxWeeks)
	}
	rows, err := e.db.Query(ctx, `
		SELECT w.wk AT TIME ZONE b.time_zone, count(c.id), coalesce(sum(c.amount_paid), 0)::bigint,
			coalesce(sum(c.amount_paid) FILTER (WHERE c.premium IS NOT NULL), 0)::bigint, coalesce(sum(c.premium), 0)::bigint
		FROM branches b
		CROSS JOIN LATERAL generate_series(date_trunc('week', $2::timestamptz AT TIME ZONE b.time_zone),
			$3::timestamptz AT TIME ZONE b.time_zone - interval '1 microsecond', interval '1 week') AS w (wk)
		LEFT JOIN claims c ON c.branch_id = b.id AND c.status = 'paid' AND c.deleted_at IS NULL
			AND c.paid_at >= greatest(w.wk AT TIME ZONE b.time_zone, $2) AND c.paid_at < least((w.wk + interval '1 week') AT TIME ZONE b.time_zone, $3)
		WHERE b.id = $1
		GROUP BY w.wk, b.time_zone ORDER BY w.wk`, id.BranchID, p.From, p.To)
	if err != nil {
		return nil, fmt.Errorf("payouts per week: %w", err)
	}
	weeks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (WeekPaid, error) {
		var w WeekPaid
		err := row.Scan(&w.Start, &w.Claims, &w.Amount, &w.AmountWithPremium, &w.Premium)
		w.Start = w.Start.UTC()
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("payouts per week: %w", err)
	}
	return weeks, nil
}
