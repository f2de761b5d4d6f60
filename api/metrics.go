package api

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.HistogramVec
	verifies *prometheus.CounterVec
	issued   *prometheus.CounterVec
	lockouts prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stepup_http_request_duration_seconds", Help: "HTTP request latency by route and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route", "status"}),
		verifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepup_factor_verifications_total", Help: "Factor verifications by kind and outcome.",
		}, []string{"kind", "outcome"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepup_tokens_total", Help: "Tokens issued, refreshed or revoked.",
		}, []string{"kind", "event"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stepup_throttled_total", Help: "Attempts refused by an attempt budget.",
		}),
	}
	reg.MustRegister(m.requests, m.verifies, m.issued, m.lockouts)
	return m
}

func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.m.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(c.Writer.Status())).Observe(time.Since(start).Seconds())
}
