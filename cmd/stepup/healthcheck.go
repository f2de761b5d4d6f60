package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// healthcheck probes this container's own /healthz, for images without a
// shell or curl (Docker HEALTHCHECK). With --sleep it only waits, which a
// Kubernetes preStop hook uses to let endpoints drain before SIGTERM.
func healthcheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stepup healthcheck", flag.ContinueOnError)
	sleep := fs.Duration("sleep", 0, "only wait this long, then exit 0")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sleep > 0 {
		time.Sleep(*sleep)
		return nil
	}
	addr := os.Getenv("STEPUP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080" // the default in config.go
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("STEPUP_ADDR: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // every interface: loopback is one
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %d", resp.StatusCode)
	}
	return nil
}
