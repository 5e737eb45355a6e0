package console

import (
	"net/http"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/sync"
)

// figuresPage is the branch's figures for a period (the engine's Figures, as GET
// /v1/branch/figures) and its payouts week by week (PaidPerWeek) drawn as two server-rendered
// SVG charts: paid per week, and payout against premium per week. Each chart has a table of the
// same numbers, for screen readers and for reading exact values.
type figuresPage struct {
	View
	From, To string // the period's days, as the form shows them (to inclusive)
	Figures  *sync.BranchFigures
	Weeks    []weekRow
	Paid     chart
	Ratio    chart
}

type weekRow struct {
	sync.WeekPaid
	Label string
	Ratio string
}

// chart is a bar chart laid out for the template: bars in SVG user units.
type chart struct {
	Width, Height, Base int
	Bars                []bar
	Max                 string
}

type bar struct {
	X, Y, W, H int
	Class      string
	Label      string
	Title      string
	LabelX     int
}

const (
	chartWidth  = 720
	chartHeight = 220
	chartBase   = 190 // the bars' baseline; the week labels go below it
)

func (c *Console) figures(q *request) error {
	loc := q.p.Location()
	query := q.r.URL.Query()
	now := c.now().In(loc)
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
	to := from.AddDate(0, 1, 0)
	if d, err := time.ParseInLocation(time.DateOnly, query.Get("from"), loc); err == nil {
		from = d
	}
	if d, err := time.ParseInLocation(time.DateOnly, query.Get("to"), loc); err == nil {
		to = d.AddDate(0, 0, 1) // the day asked for is included
	}
	period := sync.Period{From: from, To: to}
	figures, err := c.engine.Figures(q.ctx(), q.who, period)
	if err != nil {
		return err
	}
	weeks, err := c.engine.PaidPerWeek(q.ctx(), q.who, period)
	if err != nil {
		return err
	}
	data := figuresPage{View: q.view("figures.title"), From: from.Format(time.DateOnly), To: to.AddDate(0, 0, -1).Format(time.DateOnly),
		Figures: figures}
	var maxPaid, maxPair int64
	for _, w := range weeks {
		row := weekRow{WeekPaid: w, Label: w.Start.In(loc).Format("01-02")}
		if w.Premium > 0 {
			row.Ratio = percentOf(w.AmountWithPremium, w.Premium)
		}
		data.Weeks = append(data.Weeks, row)
		maxPaid = max(maxPaid, w.Amount)
		maxPair = max(maxPair, w.AmountWithPremium, w.Premium)
	}
	data.Paid = chart{Width: chartWidth, Height: chartHeight, Base: chartBase, Max: q.p.Money(maxPaid)}
	data.Ratio = chart{Width: chartWidth, Height: chartHeight, Base: chartBase, Max: q.p.Money(maxPair)}
	n := max(len(weeks), 1)
	slot := (chartWidth - 20) / n
	for i, w := range data.Weeks {
		x := 10 + i*slot
		data.Paid.Bars = append(data.Paid.Bars, barOf(x+slot/6, slot*2/3, w.Amount, maxPaid, "paid", w.Label, q.p.Money(w.Amount), x+slot/2))
		half := slot / 3
		data.Ratio.Bars = append(data.Ratio.Bars,
			barOf(x+slot/6, half, w.AmountWithPremium, maxPair, "paid", w.Label, q.p.T("figures.paid_with_premium")+": "+q.p.Money(w.AmountWithPremium), x+slot/2),
			barOf(x+slot/6+half, half, w.Premium, maxPair, "premium", "", q.p.T("figures.premium")+": "+q.p.Money(w.Premium), 0))
	}
	c.render(q, http.StatusOK, "figures", data)
	return nil
}

// barOf lays out a bar of value against top, at x and w wide.
func barOf(x, w int, value, top int64, class, label, title string, labelX int) bar {
	h := 0
	if top > 0 {
		h = int(value * int64(chartBase-10) / top)
	}
	if value > 0 && h < 1 {
		h = 1
	}
	return bar{X: x, Y: chartBase - h, W: max(w, 1), H: h, Class: class, Label: label, Title: title, LabelX: labelX}
}

// percentOf prints part/whole as a whole percentage.
func percentOf(part, whole int64) string {
	return strconv.FormatInt((part*100+whole/2)/whole, 10) + "%"
}
