package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFairHashing: a flood of 64 concurrent junk sign-ins from one address
// while another address signs in 10 times: the flooder holds at most its
// share of the hashing queue, and all 10 others get in (no 503).
func TestFairHashing(t *testing.T) {
	a := startApp(t, appOptions{TrustedProxies: []string{"127.0.0.1"}})
	const pw = "owner password correct horse"
	a.signup(t, "owner", pw)
	from := func(ip string, body any) int {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, a.base+"/v1/login", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", ip)
		res, err := a.client.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	var (
		wg       sync.WaitGroup
		flooded  atomic.Int64
		owner503 atomic.Int64
		ownerOK  atomic.Int64
	)
	stop := make(chan struct{})
	for i := range 64 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if from("203.0.113.66", credentials{"junk" + string(rune('a'+i%26)), "junk password number x"}) == http.StatusServiceUnavailable {
					flooded.Add(1)
				}
			}
		})
	}
	// The owner signs in ten times, one after another, while the flood
	// lasts.
	for range 10 {
		switch from("198.51.100.7", credentials{"owner", pw}) {
		case http.StatusOK:
			ownerOK.Add(1)
		case http.StatusServiceUnavailable:
			owner503.Add(1)
		}
	}
	close(stop)
	wg.Wait()
	if ownerOK.Load() != 10 {
		t.Fatalf("the other address: %d of 10 signed in, %d got 503", ownerOK.Load(), owner503.Load())
	}
	if flooded.Load() == 0 {
		t.Fatal("the flooder was never refused: no share was enforced")
	}
	t.Logf("flooder refused %d times", flooded.Load())
}
