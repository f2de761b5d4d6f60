// Command stepup-bench drives the whole sign-in flow against running stepup
// instances and prints throughput and latency per step:
//
//	stepup-bench -targets http://127.0.0.1:8081,http://127.0.0.1:8082 -users 300 -workers 8 -duration 30s
//
// Setup signs up -users accounts and enrolls a TOTP app for each (not
// timed). Then -workers loop for -duration: password step, TOTP step,
// refresh, and an offline resource-server verification of the access token
// against the service's JWKS. Each request goes to the next target, so a
// flow hops instances at every step. A TOTP time step is accepted once per
// factor, so each user can finish one sign-in per 30 s: -users bounds the
// TOTP rate (users/30 per second). It also measures, in the same run, the
// raw argon2id and ECDSA P-256 costs the steps are built on.
//
// It only talks to the addresses it is given; its loops are bounded by
// -duration.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	targets := flag.String("targets", "http://127.0.0.1:8080", "comma-separated base URLs of stepup instances")
	users := flag.Int("users", 200, "accounts to create (bounds the TOTP rate to users/30 per second)")
	workers := flag.Int("workers", 8, "concurrent workers")
	duration := flag.Duration("duration", 20*time.Second, "how long to drive load (at most 10m)")
	audience := flag.String("audience", "stepup", "access-token audience the resource-server step expects")
	flag.Parse()
	if *duration <= 0 || *duration > 10*time.Minute || *users < 1 || *workers < 1 {
		fmt.Fprintln(os.Stderr, "stepup-bench: -duration must be in (0, 10m], -users and -workers ≥ 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	b := &bench{targets: strings.Split(*targets, ","), workers: *workers, audience: *audience}
	if err := b.run(ctx, *users, *duration, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "stepup-bench:", err)
		os.Exit(1)
	}
}
