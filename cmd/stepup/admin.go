package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store"
	"github.com/stepup-auth/stepup/tokens"
)

const adminUsage = `usage: stepup admin COMMAND [ARGUMENT]
  users [PREFIX]      list users (whose username begins with PREFIX)
  create USERNAME     create a user whatever STEPUP_SIGNUP says; the password is read from standard input
  disable USERNAME    no sign-in by any path, every session ended
  enable USERNAME     allow sign-in again
  unlock USERNAME     lift password and second-factor locks only
  reset USERNAME      remove every second factor and recovery code, end all sessions, lift locks
  logout USERNAME     end every session
  delete USERNAME     delete the account; the name is free again
It uses the same STEPUP_* settings as the service, and the same application
methods as the admin API (STEPUP_ADMIN_ADDR, /admin/v1), for bootstrapping
and for when no admin client is configured. With the embedded store it
talks to a running service through the socket in the data folder.`

// adminCommands take a username, except users (an optional prefix).
var adminCommands = []string{"users", "create", "disable", "enable", "unlock", "reset", "logout", "delete"}

// admin runs an operator's command: the application's methods (api/flows),
// the ones the admin API calls, on the store the settings name.
func admin(ctx context.Context, args []string) error {
	if len(args) == 0 || !slices.Contains(adminCommands, args[0]) || len(args) > 2 || (args[0] != "users" && len(args) != 2) {
		return errors.New(adminUsage)
	}
	cfg, err := LoadConfig(nil, os.Getenv)
	if err != nil {
		return err
	}
	cmd, arg := args[0], ""
	if len(args) == 2 {
		arg = args[1]
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
		Password: mfa.NewPassword(mfa.DefaultArgon2, 0, 0),
		Budgets:  flows.Budgets{Login: &mfa.Budget{Store: db.Budgets(), Now: time.Now}},
		WebAuthn: &mfa.WebAuthn{Ceremonies: db.Ceremonies()},
		Sessions: tokens.NewSessions(db.Sessions()),
		Pending:  db.PendingTokens(), // a disable or deletion ends the user's mfa_tokens
		Devices:  db.Devices(),       // a reset or deletion forgets the remembered devices
		Policy:   mfa.DefaultPolicy,  // no command here depends on the aal3 mode
		Logger:   quiet,
	})
	defer app.Close() // writes the security event before the store closes
	op := flows.Operator{Name: "stepup admin (" + currentUser() + ")"}
	return runAdmin(ctx, app, op, cmd, arg, os.Stdin, os.Stdout)
}

// runAdmin runs one command with app for op; out gets what the command
// shows (a list, or one line saying what was done).
func runAdmin(ctx context.Context, app *flows.App, op flows.Operator, cmd, arg string, in io.Reader, out io.Writer) error {
	switch cmd {
	case "users":
		cursor := ""
		for {
			us, next, err := app.ListUsers(ctx, arg, cursor, flows.MaxPageSize)
			if err != nil {
				return err
			}
			for _, u := range us {
				state := ""
				if u.Disabled {
					state = "\tdisabled"
				}
				fmt.Fprintf(out, "%s\t%s\t%d factors%s\n", u.ID, u.Username, len(u.Confirmed("")), state)
			}
			if next == "" {
				return nil
			}
			cursor = next
		}
	case "create":
		pw, err := bufio.NewReader(io.LimitReader(in, 4<<10)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		u, err := app.CreateUser(ctx, op, arg, strings.TrimRight(pw, "\r\n"))
		if err != nil {
			return fmt.Errorf("user %q: %w", arg, err)
		}
		fmt.Fprintf(out, "created %s (id %s)\n", u.Username, u.ID)
		return nil
	}
	u, err := app.UserByName(ctx, arg)
	if err != nil {
		return fmt.Errorf("user %q: %w", arg, err)
	}
	var done string
	switch cmd {
	case "disable":
		done = "disabled: no sign-in, every session ended"
		_, err = app.DisableUser(ctx, op, u.ID)
	case "enable":
		done = "enabled"
		_, err = app.EnableUser(ctx, op, u.ID)
	case "unlock":
		done = "unlocked"
		_, err = app.UnlockUser(ctx, op, u.ID)
	case "reset":
		done = "reset: second factors and recovery codes removed, sessions ended, locks lifted"
		_, err = app.ResetUser(ctx, op, u.ID)
	case "logout":
		done = "every session ended"
		err = app.EndUserSessions(ctx, op, u.ID)
	case "delete":
		done = "deleted: the account, its factors and sessions; the name is free"
		err = app.DeleteUser(ctx, op, u.ID)
	}
	if err != nil {
		return fmt.Errorf("user %q: %w", u.Username, err)
	}
	fmt.Fprintf(out, "%s %s\n", u.Username, done)
	return nil
}

// currentUser names the operating-system user running the command.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}
