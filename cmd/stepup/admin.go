package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"time"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store"
	"github.com/stepup-auth/stepup/tokens"
)

const adminUsage = `usage: stepup admin reset USERNAME    remove every second factor and recovery code, end all sessions, lift locks
       stepup admin unlock USERNAME   lift password and second-factor locks only
It uses the same STEPUP_* settings as the service. With the embedded store it
talks to a running service through the socket in the data folder.`

// admin runs the operator's account recovery: the application's Unlock and
// Reset (api/flows), on the store the settings name.
func admin(ctx context.Context, args []string) error {
	if len(args) != 2 || (args[0] != "reset" && args[0] != "unlock") {
		return errors.New(adminUsage)
	}
	cfg, err := LoadConfig(nil, os.Getenv)
	if err != nil {
		return err
	}
	name, err := mfa.CanonicalUsername(args[1])
	if err != nil {
		return fmt.Errorf("USERNAME: %w", err)
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	uri := cfg.MongoURI
	if uri == "" {
		if cfg.MasterKey == nil {
			if cfg.MasterKey, _, err = masterKeyFile(cfg.DataDir); err != nil {
				return fmt.Errorf("STEPUP_DATA_DIR: master key: %w", err)
			}
		}
		// A running stepup serves the folder on its socket: talk to it
		// rather than open the same SQLite files from a second process.
		if live, ok := store.LiveSocket(cfg.DataDir); ok {
			uri = live
		} else {
			e, err := store.StartEmbedded(cfg.DataDir, "", quiet)
			if err != nil {
				return err
			}
			defer e.Close()
			uri = e.URI()
		}
	}
	db, err := store.Open(ctx, store.Config{URI: uri, MasterKey: cfg.MasterKey, Logger: quiet})
	if err != nil {
		return fmt.Errorf("STEPUP_MONGODB_URI: %w", err)
	}
	defer db.Close(context.Background())

	// The same application methods as the service's, on the store alone.
	app := flows.New(flows.Deps{
		Users:    db,
		Events:   db.Events(),
		Budgets:  flows.Budgets{Login: &mfa.Budget{Store: db.Budgets(), Now: time.Now}},
		WebAuthn: &mfa.WebAuthn{Ceremonies: db.Ceremonies()},
		Sessions: tokens.NewSessions(db.Sessions()),
		Policy:   mfa.DefaultPolicy,
		Logger:   quiet,
	})
	defer app.Close() // writes the security event before the store closes
	op := flows.Operator{Name: "stepup admin (" + currentUser() + ")"}
	if args[0] == "unlock" {
		u, err := app.Unlock(ctx, op, name)
		if err != nil {
			return fmt.Errorf("user %q: %w", name, err)
		}
		fmt.Fprintf(os.Stderr, "unlocked %s\n", u.Username)
		return nil
	}
	u, err := app.Reset(ctx, op, name)
	if err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	fmt.Fprintf(os.Stderr, "reset %s: second factors and recovery codes removed, sessions ended, locks lifted\n", u.Username)
	return nil
}

// currentUser names the operating-system user running the command.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}
