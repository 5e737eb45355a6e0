package sync

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics adds the engine's gauges to reg: what holds back pulls, and how far back the
// change log reaches (the prune horizon), read from the database at each scrape.
func (e *Engine) RegisterMetrics(reg prometheus.Registerer) error {
	c := &horizonMetrics{e: e,
		oldest: prometheus.NewDesc("fieldsync_oldest_transaction_age_seconds",
			"Age of the oldest transaction open on the database server (pg_stat_activity's xact_start). Pulls serve changes only below it: while it runs, every device waits for what committed after it began.",
			nil, nil),
		horizon: prometheus.NewDesc("fieldsync_prune_horizon_age_seconds",
			"Age of the oldest change the log still holds: cursors older than about this get 410 cursor_expired. Stays near FIELDSYNC_RETENTION while pruning keeps up; above it when it does not (a long transaction holds the horizon back).",
			nil, nil),
		retention: prometheus.NewDesc("fieldsync_retention_seconds",
			"FIELDSYNC_RETENTION: how long the change log, stored mutation results and finished push deliveries are kept.", nil, nil),
	}
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("register sync metrics: %w", err)
	}
	return nil
}

type horizonMetrics struct {
	e                          *Engine
	oldest, horizon, retention *prometheus.Desc
}

func (m *horizonMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.oldest
	ch <- m.horizon
	ch <- m.retention
}

// Collect reads both ages in one query. The oldest transaction is looked for among every
// database's sessions: xids are the server's, so any of them holds back the snapshots pulls read.
// The database role needs pg_read_all_stats to see other roles' sessions (otherwise only its own).
func (m *horizonMetrics) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(m.retention, prometheus.GaugeValue, m.e.cfg.ChangeRetention.Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var oldest, horizon float64
	err := m.e.db.QueryRow(ctx, `
		SELECT coalesce(extract(epoch FROM clock_timestamp() - (SELECT min(xact_start) FROM pg_stat_activity
				WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend')), 0)::float8,
			coalesce(extract(epoch FROM coalesce($1::timestamptz, clock_timestamp()) - (SELECT min(created_at) FROM changes)), 0)::float8`,
		m.e.sqlNow()).Scan(&oldest, &horizon)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.oldest, fmt.Errorf("read transaction and horizon ages: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(m.oldest, prometheus.GaugeValue, max(oldest, 0))
	ch <- prometheus.MustNewConstMetric(m.horizon, prometheus.GaugeValue, max(horizon, 0))
}
