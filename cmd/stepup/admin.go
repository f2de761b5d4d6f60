package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store"
)

const adminUsage = `usage: stepup admin reset USERNAME    remove every second factor and recovery code, end all sessions, lift locks
       stepup admin unlock USERNAME   lift password and second-factor locks only
It uses the same STEPUP_* settings as the service. With the embedded store,
stop the service first (or run it on 'stepup devstore').`

// admin runs account recovery operations directly on the store.
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

	u, err := db.UserByName(ctx, name)
	if err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	budget := &mfa.Budget{Store: db.Budgets(), Now: time.Now}
	if err := budget.Reset(ctx, "pwd|"+u.Username); err != nil {
		return err
	}
	if err := db.ForgiveAttempts(ctx, u.ID); err != nil {
		return err
	}
	if args[0] == "unlock" {
		fmt.Fprintf(os.Stderr, "unlocked %s\n", u.Username)
		return nil
	}
	for _, f := range u.Factors {
		if _, err := db.RemoveFactor(ctx, u.ID, f.ID); err != nil && !errors.Is(err, mfa.ErrNotEnrolled) {
			return err
		}
		if f.Credential != nil {
			if err := db.Ceremonies().ReleaseCredential(ctx, f.Credential.ID); err != nil {
				return err
			}
		}
	}
	if err := db.SetRecoveryCodes(ctx, u.ID, nil); err != nil {
		return err
	}
	now := time.Now()
	if err := db.Sessions().RevokeUserSessions(ctx, u.ID, "", now); err != nil {
		return err
	}
	if err := db.Events().AddEvents(ctx, []mfa.Event{{ID: fmt.Sprintf("admin-%d", now.UnixNano()), UserID: u.ID,
		Type: mfa.EventAdminReset, Detail: "factors, recovery codes and sessions removed", At: now}}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reset %s: second factors and recovery codes removed, sessions ended, locks lifted\n", u.Username)
	return nil
}
