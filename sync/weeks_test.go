package sync_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/fixture"
	"github.com/fieldsync/fieldsync/sync"
)

// TestPaidPerWeekInTheBranchsTimeZone splits a Shanghai branch's November payouts by its own
// weeks: a payment at 23:30 on Sunday 1 November in Shanghai (15:30 UTC) is the first week's, one
// at 00:30 on Monday the 2nd (16:30 UTC on the 1st) the second's.
func TestPaidPerWeekInTheBranchsTimeZone(t *testing.T) {
	t.Parallel()
	f := newEngineFixture(t, 4)
	ctx := context.Background()
	f.exec(t, `UPDATE branches SET time_zone = 'Asia/Shanghai' WHERE id = $1`, f.branch)
	manager := f.newUser(t, fieldsync.RoleManager, "")
	customer := f.newCustomer(t, [16]byte{})
	fx := fixture.New(t, f.pool)
	premium := int64(50000)
	paid := func(at time.Time, amount int64, premium *int64) {
		fx.Claim(fixture.Claim{Branch: f.branch, Customer: customer, Policy: "P", Status: "paid", AmountClaimed: amount,
			AmountPaid: amount, Premium: premium, PaidAt: at, CreatedAt: at.Add(-48 * time.Hour)})
	}
	paid(time.Date(2026, 11, 1, 15, 30, 0, 0, time.UTC), 10000, nil)
	paid(time.Date(2026, 11, 1, 16, 30, 0, 0, time.UTC), 20000, &premium)
	paid(time.Date(2026, 11, 3, 1, 0, 0, 0, time.UTC), 5000, nil)
	paid(time.Date(2026, 10, 31, 15, 0, 0, 0, time.UTC), 99900, nil) // 23:00 on 31 October in Shanghai: before the period

	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	from, to := time.Date(2026, 11, 1, 0, 0, 0, 0, shanghai), time.Date(2026, 12, 1, 0, 0, 0, 0, shanghai)
	weeks, err := f.engine.PaidPerWeek(ctx, manager, sync.Period{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	// Weeks starting 26 Oct (cut to 1 Nov), 2, 9, 16, 23 and 30 Nov.
	if len(weeks) != 6 {
		t.Fatalf("%d weeks: %+v", len(weeks), weeks)
	}
	if !weeks[0].Start.Equal(time.Date(2026, 10, 26, 0, 0, 0, 0, shanghai)) || !weeks[1].Start.Equal(time.Date(2026, 11, 2, 0, 0, 0, 0, shanghai)) {
		t.Errorf("weeks start %s and %s, want Mondays in Shanghai", weeks[0].Start, weeks[1].Start)
	}
	if w := weeks[0]; w.Claims != 1 || w.Amount != 10000 || w.Premium != 0 {
		t.Errorf("first week %+v", w)
	}
	if w := weeks[1]; w.Claims != 2 || w.Amount != 25000 || w.AmountWithPremium != 20000 || w.Premium != 50000 {
		t.Errorf("second week %+v", w)
	}
	for _, w := range weeks[2:] {
		if w.Claims != 0 || w.Amount != 0 {
			t.Errorf("a week with nothing paid: %+v", w)
		}
	}
	rep := f.newUser(t, fieldsync.RoleRep, "agent")
	if _, err := f.engine.PaidPerWeek(ctx, rep, sync.Period{}); fieldsync.ErrorKind(err) != fieldsync.EFORBIDDEN {
		t.Errorf("a rep: %v", err)
	}
	if _, err := f.engine.PaidPerWeek(ctx, manager, sync.Period{From: from, To: from.AddDate(3, 0, 0)}); fieldsync.ErrorCode(err) != "invalid_value" {
		t.Errorf("three years: %v", err)
	}
}
