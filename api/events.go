package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
)

// recorder writes security events off the request path: a request never
// waits for, or fails because of, its audit record, and so the time a
// response takes does not depend on whether an event was due (which would
// tell a known username from an unknown one). The queue is bounded; when
// it is full an event is dropped and that is logged.
type recorder struct {
	store mfa.EventStore
	queue chan mfa.Event
	log   func(msg string, args ...any)
	wg    sync.WaitGroup
}

func newRecorder(store mfa.EventStore, log func(string, ...any)) *recorder {
	r := &recorder{store: store, queue: make(chan mfa.Event, 1024), log: log}
	if store == nil {
		return r
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for e := range r.queue {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := r.store.AddEvent(ctx, e); err != nil {
				r.log("security event not recorded", "type", e.Type, "user", e.UserID, "err", err)
			}
			cancel()
		}
	}()
	return r
}

func (r *recorder) add(e mfa.Event) {
	if r.store == nil {
		return
	}
	select {
	case r.queue <- e:
	default:
		r.log("security event dropped: queue full", "type", e.Type, "user", e.UserID)
	}
}

// close writes what is queued and stops.
func (r *recorder) close() {
	close(r.queue)
	r.wg.Wait()
}

// event records a security event about userID from this request.
func (s *Server) event(c *gin.Context, userID, sid, typ, detail string) {
	if userID == "" {
		return
	}
	ua := c.Request.UserAgent()
	if len(ua) > 256 {
		ua = ua[:256]
	}
	s.events.add(mfa.Event{ID: s.Rand(12), UserID: userID, SessionID: sid, Type: typ, Detail: detail,
		At: s.Now(), IP: c.ClientIP(), UserAgent: ua})
}

type eventView struct {
	Type      string    `json:"type"`
	Detail    string    `json:"detail,omitempty"`
	At        time.Time `json:"at"`
	SessionID string    `json:"sid,omitempty"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
}

// myEvents is GET /v1/me/events: the caller's 50 most recent events.
func (s *Server) myEvents(c *gin.Context) {
	evs, err := s.Events.Events(c.Request.Context(), accessClaims(c).Subject, 50)
	if err != nil {
		_ = c.Error(err)
		return
	}
	out := make([]eventView, len(evs))
	for i, e := range evs {
		out[i] = eventView{Type: e.Type, Detail: e.Detail, At: e.At.UTC(), SessionID: e.SessionID, IP: e.IP, UserAgent: e.UserAgent}
	}
	writeJSON(c, http.StatusOK, gin.H{"events": out})
}

// Close stops background work: queued security events are written first.
func (s *Server) Close() { s.events.close() }
