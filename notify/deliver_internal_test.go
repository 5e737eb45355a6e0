package notify

import (
	"testing"

	"github.com/fieldsync/fieldsync/internal/jobqueue"
)

// TestDeliveryTimeoutAllowsRescue: River rescues a job only after its kind's timeout; the
// delivery job's stays below jobqueue.RescueAfter, so a dead replica's deliveries are taken up
// within a minute (see package jobqueue), and a send fits in an attempt.
func TestDeliveryTimeoutAllowsRescue(t *testing.T) {
	got := (&deliveryWorker{}).Timeout(nil)
	if got <= 0 || got >= jobqueue.RescueAfter {
		t.Errorf("delivery timeout %s, want below %s", got, jobqueue.RescueAfter)
	}
	var c Config
	c.setDefaults()
	if c.SendTimeout >= got {
		t.Errorf("a send may take %s, longer than the attempt's %s", c.SendTimeout, got)
	}
}
