package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/event"
)

// storeMonitor times every store command by name and outcome, from the
// driver's command monitor.
func storeMonitor(reg *prometheus.Registry) *event.CommandMonitor {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stepup_store_command_duration_seconds",
		Help:    "Store round trips by command and outcome.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"command", "outcome"})
	reg.MustRegister(h)
	return &event.CommandMonitor{
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			h.WithLabelValues(e.CommandName, "ok").Observe(e.Duration.Seconds())
		},
		Failed: func(_ context.Context, e *event.CommandFailedEvent) {
			h.WithLabelValues(e.CommandName, "error").Observe(e.Duration.Seconds())
		},
	}
}
