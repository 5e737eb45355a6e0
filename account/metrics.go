package account

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics adds the password-hash bound's collectors to reg: the hashes running and
// waiting now, and the logins refused with server_busy. A flood of logins shows there first.
func (s *Service) RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fieldsync_password_hashes_running",
			Help: "Password hashes (argon2id) running now; at most FIELDSYNC_LOGIN_CONCURRENCY.",
		}, func() float64 { return float64(len(s.hashSlots)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fieldsync_password_hashes_waiting",
			Help: "Logins waiting for a password-hash slot now.",
		}, func() float64 { return float64(s.HashesWaiting()) }),
		s.hashBusy,
		&unsyncedDevices{s: s, desc: prometheus.NewDesc("fieldsync_devices_unsynced",
			"Devices in use (not revoked or wiped, of users not disabled) that have neither pulled nor pushed for 24 h, by branch.",
			[]string{"branch_id"}, nil)},
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register account metrics: %w", err)
		}
	}
	return nil
}

// UnsyncedAfter is how long without a pull or push makes a device count as not syncing.
const UnsyncedAfter = 24 * time.Hour

// unsyncedDevices counts, at each scrape, the devices of each branch that have not synced for
// UnsyncedAfter (one that never synced counts from its registration). A phone left in a drawer,
// or an app broken by an update, shows there before anyone misses its claims.
type unsyncedDevices struct {
	s    *Service
	desc *prometheus.Desc
}

func (u *unsyncedDevices) Describe(ch chan<- *prometheus.Desc) { ch <- u.desc }

func (u *unsyncedDevices) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := u.s.db.Query(ctx, `
		SELECT b.id, count(d.id)
		FROM branches b
		LEFT JOIN users usr ON usr.branch_id = b.id AND usr.disabled_at IS NULL
		LEFT JOIN devices d ON d.user_id = usr.id AND d.revoked_at IS NULL AND d.wiped_at IS NULL
		     AND coalesce(greatest(d.last_pull_at, d.last_push_at), d.created_at) < $1
		GROUP BY b.id`, u.s.NowFunc().Add(-UnsyncedAfter))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(u.desc, fmt.Errorf("count unsynced devices: %w", err))
		return
	}
	defer rows.Close()
	for rows.Next() {
		var branch uuid.UUID
		var n int64
		if err := rows.Scan(&branch, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(u.desc, fmt.Errorf("count unsynced devices: %w", err))
			return
		}
		ch <- prometheus.MustNewConstMetric(u.desc, prometheus.GaugeValue, float64(n), branch.String())
	}
	if err := rows.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(u.desc, fmt.Errorf("count unsynced devices: %w", err))
	}
}
