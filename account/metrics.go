package account

import (
	"fmt"

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
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register account metrics: %w", err)
		}
	}
	return nil
}
