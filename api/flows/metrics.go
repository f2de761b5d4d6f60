package flows

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	verifies *prometheus.CounterVec
	issued   *prometheus.CounterVec
	lockouts prometheus.Counter
	stepups  *prometheus.CounterVec
	dpop     *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		verifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepup_factor_verifications_total", Help: "Factor verifications by kind and outcome.",
		}, []string{"kind", "outcome"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepup_tokens_total", Help: "Tokens issued, refreshed or revoked.",
		}, []string{"kind", "event"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stepup_throttled_total", Help: "Attempts refused by an attempt budget.",
		}),
		stepups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepup_stepups_total", Help: "Completed step-ups by requested and granted acr.",
		}, []string{"requested", "granted"}),
	}
	m.dpop = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stepup_dpop_proofs_total", Help: "DPoP proofs by outcome: accepted, invalid, nonce (no current nonce), replay.",
	}, []string{"outcome"})
	reg.MustRegister(m.verifies, m.issued, m.lockouts, m.stepups, m.dpop)
	return m
}

func (m *metrics) verified(kind string, ok bool) {
	outcome := "failure"
	if ok {
		outcome = "success"
	}
	m.verifies.WithLabelValues(kind, outcome).Inc()
}
