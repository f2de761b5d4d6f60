package flows

import (
	"context"
	"sync"
	"time"

	"github.com/stepup-auth/stepup/mfa"
)

// recorder writes security events off the request path, so the time a
// response takes does not depend on whether an event was due (which would
// tell a known username from an unknown one). The queue is bounded; when it
// is full, a request waits for room (back-pressure) rather than drop an
// event, and a failed write is retried while the store recovers.
type recorder struct {
	store mfa.EventStore
	queue chan mfa.Event
	log   func(msg string, args ...any)
	wg    sync.WaitGroup
	once  sync.Once
}

// recorderWriters write events concurrently; the store serialises nothing
// between them (each event is its own insert).
const recorderWriters = 2

func newRecorder(store mfa.EventStore, log func(string, ...any)) *recorder {
	r := &recorder{store: store, queue: make(chan mfa.Event, 1024), log: log}
	if store == nil {
		return r
	}
	for range recorderWriters {
		r.wg.Go(func() {
			batch := make([]mfa.Event, 0, maxEventBatch)
			for e := range r.queue {
				// Under load, what queued meanwhile goes in the same
				// round trip.
				batch = append(batch[:0], e)
			drain:
				for len(batch) < maxEventBatch {
					select {
					case e, ok := <-r.queue:
						if !ok {
							break drain
						}
						batch = append(batch, e)
					default:
						break drain
					}
				}
				r.write(batch)
			}
		})
	}
	return r
}

const maxEventBatch = 64

// write inserts es, retrying for about a minute of store trouble.
func (r *recorder) write(es []mfa.Event) {
	wait := 100 * time.Millisecond
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := r.store.AddEvents(ctx, es)
		cancel()
		if err == nil {
			return
		}
		if try == 10 {
			r.log("security events not recorded after 10 tries", "count", len(es), "err", err)
			return
		}
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Second)
	}
}

// add queues e, waiting for room when the queue is full.
func (r *recorder) add(e mfa.Event) {
	if r.store == nil {
		return
	}
	r.queue <- e
}

// close writes what is queued and stops. It may be called more than once.
func (r *recorder) close() {
	r.once.Do(func() {
		close(r.queue)
		r.wg.Wait()
	})
}

// Events returns the user's newest security events, at most limit.
func (a *App) Events(ctx context.Context, userID string, limit int) ([]mfa.Event, error) {
	return a.Deps.Events.Events(ctx, userID, limit)
}
