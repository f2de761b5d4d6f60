package flows

import (
	"context"
	"errors"
	"time"

	"github.com/stepup-auth/stepup/mfa"
)

// Remembered devices: after a second factor, a client that proved a DPoP
// key may ask to remember it (Client.RememberDevice); a later password
// sign-in with a proof of that key then skips the second factor, at the
// level mfa.Policy.RememberedDevice says. The grant is bound to the key
// only: there is no bearer "remember me" token to steal.

// Errors of remembered devices.
var (
	ErrRememberNeedsKey = errors.New("flows: remembering a device needs a DPoP proof of its key")
	ErrRememberOff      = errors.New("flows: remembering devices is turned off")
)

// mayRemember refuses, before anything is spent, a wish to remember the
// device that cannot be granted.
func (a *App) mayRemember(cl Client) error {
	switch {
	case !cl.RememberDevice:
		return nil
	case a.Deps.Devices == nil || a.RememberFor <= 0:
		return ErrRememberOff
	case cl.Proof == nil:
		return ErrRememberNeedsKey
	}
	return nil
}

// remember records the grant for the key of cl's proof after a real second
// factor verified at now. A failure is logged: the sign-in stands, the
// device is simply not remembered (Tokens.Remembered says so).
func (a *App) remember(ctx context.Context, cl Client, userID string, now time.Time) bool {
	jkt := cl.Proof.JKT()
	name := cl.UserAgent
	if len(name) > 128 {
		name = name[:128]
	}
	d := &mfa.Device{ID: mfa.DeviceID(userID, jkt), UserID: userID, JKT: jkt, Name: name, CreatedAt: now,
		FactorAt: now, ExpiresAt: now.Add(a.RememberFor)}
	if err := a.Deps.Devices.RememberDevice(context.WithoutCancel(ctx), d); err != nil {
		a.Logger.Warn("device not remembered", "user", userID, "err", err)
		return false
	}
	a.event(cl, userID, "", mfa.EventDeviceRemembered, d.ID)
	return true
}

// rememberedDevice returns the live grant of the key cl proved for u, or
// nil.
func (a *App) rememberedDevice(ctx context.Context, cl Client, u *mfa.User) (*mfa.Device, error) {
	jkt := cl.Proof.JKT()
	if jkt == "" || a.Deps.Devices == nil || a.RememberFor <= 0 {
		return nil, nil
	}
	d, err := a.Deps.Devices.Device(ctx, mfa.DeviceID(u.ID, jkt), a.Now())
	if errors.Is(err, mfa.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// ListDevices lists the caller's remembered devices.
func (a *App) ListDevices(ctx context.Context, c *Caller) ([]mfa.Device, error) {
	if a.Deps.Devices == nil {
		return []mfa.Device{}, nil
	}
	return a.Deps.Devices.Devices(ctx, c.Session.UserID, a.Now())
}

// ForgetDevice revokes one of the caller's remembered devices: its next
// sign-in asks for a second factor again. mfa.ErrNotFound if there is no
// such device of the caller.
func (a *App) ForgetDevice(ctx context.Context, c *Caller, id string) error {
	if a.Deps.Devices == nil {
		return mfa.ErrNotFound
	}
	if err := a.Deps.Devices.ForgetDevice(ctx, c.Session.UserID, id); err != nil {
		return err
	}
	a.event(c.Client, c.Session.UserID, c.Session.ID, mfa.EventDeviceForgotten, id)
	return nil
}

// forgetDevices revokes every remembered device of userID (a password
// change, a factor removal, an operator's reset).
func (a *App) forgetDevices(ctx context.Context, userID string) error {
	if a.Deps.Devices == nil {
		return nil
	}
	return a.Deps.Devices.ForgetDevices(context.WithoutCancel(ctx), userID)
}
