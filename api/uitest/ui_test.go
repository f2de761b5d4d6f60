package uitest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser tests drive the built-in page (/ui/) in real headless Chromium
// over the DevTools protocol, with the DevTools virtual authenticator in
// place of a security key. They see what a person sees: they type into the
// page's fields, click its buttons and read its text; they never call the API
// behind the page's back. What they check of the authenticator itself, they
// read from the DevTools WebAuthn domain.
//
// The service is the real binary in its own process (service_test.go), on
// the real clock: what needs time to pass is reached without a fake clock
// (see TestBrowserUI/RemoveNeedsStepUp and TestBrowserSessionExpiry).

// browserPhonePNG is where the phone-width screenshot of the signed-in page goes.
const browserPhonePNG = "/tmp/stepup-ui.png"

// TestBrowserUI walks a person through the page, one step after another on
// one account (then a second): sign-up, a passkey and the recovery codes it
// brings, a removal behind an in-place step-up, password + key, passkey
// alone, a reload, TOTP enrollment and sign-in, a recovery code, rename
// behind a step-up, user verification refused, removal, the security
// activity, a removed key refused and a synced passkey. (Expiry of the access token and of the
// session: TestBrowserSessionExpiry.)
func TestBrowserUI(t *testing.T) {
	t.Parallel()
	chrome := browserChromium(t)
	start := time.Now()
	svc := startService(t)
	p := browserOpen(t, chrome, svc.Origin, 2*time.Minute)
	t.Logf("service and browser ready in %v", time.Since(start).Round(time.Millisecond))
	key := p.addAuthenticator(t, false)

	const user, pw = "ada", "correct horse battery staple"
	var recoveryCodes []string // shown once with the first factor
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"SignUpGivesPasswordOnly", func(t *testing.T) {
			if got := p.focused(t); got != "username" {
				t.Errorf("initial focus on #%s, want #username", got)
			}
			p.shot(t, "1-signin")
			p.fill(t, "#username", user)
			p.fill(t, "#password", pw)
			p.click(t, "#signup")
			acr, amr := p.signedIn(t)
			browserWant(t, "acr", acr, "aal1")
			browserWant(t, "amr", amr, "pwd")
			browserWant(t, "username", p.text(t, "me-username"), user)
			if !p.visible(t, "factors-empty") {
				t.Error("a new account should say it has no factors")
			}
			if got := p.focused(t); got != "account-title" {
				t.Errorf("focus after sign-in on #%s, want #account-title", got)
			}
		}},
		{"RegisterPasskey", func(t *testing.T) {
			p.fill(t, "#factor-name", "Laptop passkey")
			p.click(t, "#add-key")
			p.waitOK(t, `document.querySelector('#factors li[data-kind="webauthn"]')`, "the new key in the list")
			browserWant(t, "factor name", browserEval[string](t, p,
				`document.querySelector('#factors li[data-kind="webauthn"] .factor-name').textContent`), "Laptop passkey")
			creds := p.credentials(t, key)
			if len(creds) != 1 || !creds[0].IsResidentCredential {
				t.Fatalf("authenticator holds %d credentials (want 1, resident)", len(creds))
			}
			t.Logf("virtual authenticator credential: BE=%v BS=%v", creds[0].BackupEligibility, creds[0].BackupState)

			// The first factor brings the first recovery codes, shown once.
			p.waitVisible(t, "recovery-panel")
			browserWant(t, "focus", p.focused(t), "recovery-panel-title")
			recoveryCodes = browserEval[[]string](t, p, `[...document.querySelectorAll('#recovery-list li')].map(li => li.textContent)`)
			if len(recoveryCodes) < 8 {
				t.Fatalf("%d recovery codes shown, want at least 8", len(recoveryCodes))
			}
			p.shot(t, "2-recovery-codes")
			p.click(t, "#recovery-done")
			p.waitFor(t, `document.getElementById('recovery-panel').hidden && document.getElementById('recovery-list').children.length === 0`,
				"the codes gone from the page")
			if got := p.text(t, "recovery-count"); !strings.Contains(got, strconv.Itoa(len(recoveryCodes))+" unused") {
				t.Errorf("recovery count says %q, want %d unused", got, len(recoveryCodes))
			}
		}},
		{"RemoveNeedsStepUp", func(t *testing.T) {
			// Still in the sign-up session (aal1, the password alone): too
			// weak to remove a factor. (A sign-in older than the 10 minutes
			// of freshness gets the same RFC 9470 challenge, and the page the
			// same way through; the service runs on the real clock, so that
			// cause is left to the API tests' fake clock in cmd/stepup.)
			browserWant(t, "acr before", p.text(t, "me-acr"), "aal1")
			p.click(t, `#factors li[data-kind="webauthn"] .remove`)
			p.click(t, `#factors li[data-kind="webauthn"] .remove-yes`)
			p.waitVisible(t, "stepup")
			p.waitIdle(t)
			browserWant(t, "focus", p.focused(t), "stepup-title")
			p.shot(t, "6-stepup")
			if txt := p.text(t, "stepup-text"); !strings.Contains(txt, "Confirm it’s you") {
				t.Errorf("step-up panel says %q, want it to ask to confirm it's you", txt)
			}
			if n := browserEval[int](t, p, `document.querySelectorAll('#factors li[data-kind="webauthn"]').length`); n != 1 {
				t.Fatalf("%d keys listed after a refused removal, want 1", n)
			}
			// Step-up in place (POST /v1/stepup): the same session, raised.
			p.click(t, "#stepup-confirm")
			p.waitOK(t, `document.getElementById('view-mfa').checkVisibility()`, "the step-up view")
			p.waitIdle(t)
			if txt := p.text(t, "mfa-intro"); !strings.Contains(txt, "confirm it’s you") {
				t.Errorf("step-up view says %q", txt)
			}
			p.click(t, "#webauthn-verify")
			acr, amr := p.signedIn(t)
			wantACR, k := browserKeyAssurance(p.credentials(t, key)[0].BackupEligibility)
			browserWant(t, "acr after step-up", acr, wantACR)
			browserWant(t, "amr after step-up", amr, "pwd "+k+" user mfa")
			if msg := p.text(t, "status"); !strings.HasPrefix(msg, "Confirmed") {
				t.Errorf("status %q after step-up, want Confirmed", msg)
			}
			// The key stays: the steps below sign in with it, and remove it
			// (RemoveKey) once it has served.
			if n := browserEval[int](t, p, `document.querySelectorAll('#factors li[data-kind="webauthn"]').length`); n != 1 {
				t.Fatalf("%d keys listed after the step-up, want 1", n)
			}
		}},
		{"WrongPasswordIsExplained", func(t *testing.T) {
			p.signOut(t)
			p.passwordStep(t, user, "not the password")
			msg := p.waitError(t)
			p.shot(t, "3-wrong-password")
			if !strings.Contains(msg, "username or password is wrong") {
				t.Errorf("status %q, want it to say the username or password is wrong", msg)
			}
			if !p.visible(t, "view-signin") {
				t.Error("a wrong password left the sign-in view")
			}
		}},
		{"PasswordAndSecurityKey", func(t *testing.T) {
			p.passwordStep(t, user, pw)
			p.waitOK(t, `document.getElementById('view-mfa').checkVisibility()`, "the second-factor view")
			p.waitIdle(t)
			if !p.visible(t, "webauthn-verify") || p.visible(t, "totp-code") {
				t.Error("the second-factor view should offer the key and no code field")
			}
			browserWant(t, "focus", p.focused(t), "webauthn-verify")
			p.click(t, "#webauthn-verify")
			acr, amr := p.signedIn(t)
			wantACR, k := browserKeyAssurance(p.credentials(t, key)[0].BackupEligibility)
			browserWant(t, "acr", acr, wantACR)
			browserWant(t, "amr", amr, "pwd "+k+" user mfa")
		}},
		{"PasskeyAlone", func(t *testing.T) {
			p.signOut(t)
			p.click(t, "#passkey-login")
			acr, amr := p.signedIn(t)
			wantACR, k := browserKeyAssurance(p.credentials(t, key)[0].BackupEligibility)
			browserWant(t, "acr", acr, wantACR)
			browserWant(t, "amr", amr, k+" user mfa")
			browserWant(t, "username", p.text(t, "me-username"), user)
		}},
		{"ReloadResumesSessionFromCookie", func(t *testing.T) {
			// The refresh token is in an HttpOnly cookie: scripts cannot read
			// it, and a reload resumes the session with it.
			if c := browserEval[string](t, p, `document.cookie`); strings.Contains(c, "refresh") {
				t.Errorf("document.cookie = %q: the refresh token is visible to scripts", c)
			}
			p.do(t, chromedp.Reload())
			acr, amr := p.signedIn(t)
			wantACR, k := browserKeyAssurance(p.credentials(t, key)[0].BackupEligibility)
			browserWant(t, "acr after reload", acr, wantACR)
			browserWant(t, "amr after reload", amr, k+" user mfa")
		}},
		{"EnrollTOTP", func(t *testing.T) {
			// Signed in with the passkey a moment ago: fresh enough to add a factor.
			p.fill(t, "#factor-name", "Phone")
			p.click(t, "#add-totp")
			p.waitVisible(t, "totp-enroll")
			p.waitIdle(t)
			browserWant(t, "focus", p.focused(t), "totp-enroll-title")
			p.waitFor(t, `document.getElementById('totp-qr').complete && document.getElementById('totp-qr').naturalWidth > 100`,
				"the QR code image (a data: URL, allowed by img-src)")
			p.shot(t, "4-totp-enroll")
			secret := decodeBase32(t, strings.ReplaceAll(p.text(t, "totp-secret"), " ", ""))
			confirmed := totpStep()
			p.fill(t, "#totp-confirm-code", totpCode(secret, confirmed))
			p.click(t, "#totp-confirm")
			p.waitOK(t, `document.querySelector('#factors li[data-kind="totp"][data-confirmed="true"]')
				&& document.getElementById('totp-enroll').hidden`, "the confirmed app in the list")
			browserWant(t, "factor name", browserEval[string](t, p,
				`document.querySelector('#factors li[data-kind="totp"] .factor-name').textContent`), "Phone")

			// Sign in with the password and a code from the app.
			p.signOut(t)
			p.passwordStep(t, user, pw)
			p.waitOK(t, `document.getElementById('view-mfa').checkVisibility()`, "the second-factor view")
			p.waitIdle(t)
			if !p.visible(t, "totp-code") || !p.visible(t, "webauthn-verify") {
				t.Error("the second-factor view should offer both the code field and the key")
			}
			browserWant(t, "focus", p.focused(t), "totp-code")
			p.fill(t, "#totp-code", wrongCode(secret, totpStep(), 1))
			p.click(t, "#totp-verify")
			if msg := p.waitError(t); !strings.Contains(msg, "not accepted") {
				t.Errorf("status %q after a wrong code, want it to say it was not accepted", msg)
			}
			p.shot(t, "5-mfa-wrong-code")
			browserWant(t, "focus after a wrong code", p.focused(t), "totp-code")
			browserWant(t, "code field after a wrong code", browserEval[string](t, p, `document.getElementById('totp-code').value`), "")
			// The confirming code's step is spent: the next one (within the
			// service's ±1 step window), or the current one if time has
			// moved on.
			p.fill(t, "#totp-code", totpCode(secret, max(totpStep(), confirmed+1)))
			p.click(t, "#totp-verify")
			acr, amr := p.signedIn(t)
			browserWant(t, "acr", acr, "aal2")
			browserWant(t, "amr", amr, "pwd otp mfa")
		}},
		{"RecoveryCode", func(t *testing.T) {
			p.signOut(t)
			p.passwordStep(t, user, pw)
			p.waitOK(t, `document.getElementById('view-mfa').checkVisibility()`, "the second-factor view")
			p.waitIdle(t)
			if p.visible(t, "recovery-code") {
				t.Error("the recovery code field should wait behind its button")
			}
			p.click(t, "#recovery-show")
			browserWant(t, "focus", p.focused(t), "recovery-code")
			p.fill(t, "#recovery-code", strings.ToUpper(recoveryCodes[0]))
			p.click(t, "#recovery-verify")
			acr, amr := p.signedIn(t)
			browserWant(t, "acr", acr, "aal2")
			browserWant(t, "amr", amr, "pwd rec mfa")
			left := strconv.Itoa(len(recoveryCodes) - 1)
			if msg := p.text(t, "status"); !strings.Contains(msg, left+" recovery codes left") {
				t.Errorf("status %q, want it to say %s recovery codes are left", msg, left)
			}
			if got := p.text(t, "recovery-count"); !strings.Contains(got, left+" unused") {
				t.Errorf("recovery count says %q, want %s unused", got, left)
			}

			// Fresh at aal2: a new set may be made, and is shown once.
			p.click(t, "#recovery-new")
			p.waitOK(t, `document.getElementById('recovery-panel').checkVisibility()`, "the new codes")
			fresh := browserEval[[]string](t, p, `[...document.querySelectorAll('#recovery-list li')].map(li => li.textContent)`)
			if len(fresh) != len(recoveryCodes) || fresh[0] == recoveryCodes[0] {
				t.Errorf("new codes %v, want %d new ones", fresh, len(recoveryCodes))
			}
			p.click(t, "#recovery-done")
		}},
		{"RenameFactor", func(t *testing.T) {
			// Signed in with a recovery code (aal2): renaming the key needs
			// the level it provides (mfa.Policy.Requires), so the page asks
			// for a step-up first, and the key raises the same session.
			p.click(t, `#factors li[data-kind="webauthn"] .rename`)
			p.fill(t, `#factors li[data-kind="webauthn"] .rename-input`, "Work laptop")
			p.click(t, `#factors li[data-kind="webauthn"] .rename-save`)
			p.waitVisible(t, "stepup")
			p.waitIdle(t)
			if txt := p.text(t, "stepup-text"); !strings.Contains(txt, "Confirm it’s you") {
				t.Errorf("step-up panel says %q, want it to ask to confirm it's you", txt)
			}
			p.click(t, "#stepup-confirm")
			p.waitOK(t, `document.getElementById('view-mfa').checkVisibility()`, "the step-up view")
			p.waitIdle(t)
			p.click(t, "#webauthn-verify")
			acr, amr := p.signedIn(t)
			wantACR, k := browserKeyAssurance(p.credentials(t, key)[0].BackupEligibility)
			browserWant(t, "acr after step-up", acr, wantACR)
			browserWant(t, "amr after step-up", amr, "pwd rec "+k+" user mfa")
			p.click(t, `#factors li[data-kind="webauthn"] .rename`)
			p.fill(t, `#factors li[data-kind="webauthn"] .rename-input`, "Work laptop")
			p.click(t, `#factors li[data-kind="webauthn"] .rename-save`)
			p.waitOK(t, `(document.querySelector('#factors li[data-kind="webauthn"] .factor-name')||{}).textContent === 'Work laptop'`,
				"the new name in the list")
		}},
		{"PasskeyWithoutUserVerificationRefused", func(t *testing.T) {
			p.signOut(t)
			// The authenticator cannot verify the user: the browser has no
			// assertion to give, since the server asked for UV.
			p.setUserVerified(t, key, false)
			p.click(t, "#passkey-login")
			msg := p.waitError(t)
			t.Logf("UV failing in the authenticator: %q", msg)
			p.shot(t, "7-uv-failed")
			if p.visible(t, "view-account") {
				t.Fatal("signed in with a passkey without user verification")
			}
			p.setUserVerified(t, key, true)

			// The authenticator verified the user but reports UV=0: the
			// browser passes it on; the server must refuse it.
			p.overrideUV(t, key, true)
			defer p.overrideUV(t, key, false)
			p.click(t, "#passkey-login")
			msg = p.waitError(t)
			if !strings.Contains(msg, "not accepted") {
				t.Errorf("status %q, want the server's refusal (not accepted)", msg)
			}
			if p.visible(t, "view-account") {
				t.Fatal("signed in with a passkey assertion without UV")
			}

			// As a second factor after the password, UV is only preferred:
			// the same assertion is accepted, without "user" in amr.
			p.passwordStep(t, user, pw)
			p.waitOK(t, `document.getElementById('view-mfa').checkVisibility()`, "the second-factor view")
			p.waitIdle(t)
			p.click(t, "#webauthn-verify")
			acr, amr := p.signedIn(t)
			wantACR, k := browserKeyAssurance(p.credentials(t, key)[0].BackupEligibility)
			browserWant(t, "acr", acr, wantACR)
			browserWant(t, "amr", amr, "pwd "+k+" mfa")
		}},
		{"RemoveKey", func(t *testing.T) {
			// Signed in with the password and the key a moment ago: fresh
			// enough to remove it without a step-up (RemoveNeedsStepUp
			// showed the step-up a weaker session gets).
			p.click(t, `#factors li[data-kind="webauthn"] .remove`)
			p.click(t, `#factors li[data-kind="webauthn"] .remove-yes`)
			// The page lists what is left, or, if the removal ended the
			// session, says so on the sign-in view.
			p.waitOK(t, `document.getElementById('status').dataset.tone === 'success'
				&& document.getElementById('main').getAttribute('aria-busy') !== 'true'`, "the removal")
			if !strings.HasPrefix(p.text(t, "status"), "Removed “Work laptop”") {
				t.Errorf("status %q, want it to say the key was removed", p.text(t, "status"))
			}
			t.Logf("after the removal: %q (still signed in: %v)", p.text(t, "status"), p.visible(t, "view-account"))
			if p.visible(t, "view-account") {
				if n := browserEval[int](t, p, `document.querySelectorAll('#factors li[data-kind="webauthn"]').length`); n != 0 {
					t.Errorf("%d keys listed after removing the only one", n)
				}
				if n := browserEval[int](t, p, `document.querySelectorAll('#factors li[data-kind="totp"]').length`); n != 1 {
					t.Errorf("%d apps listed after removing the key, want 1", n)
				}
				// The session rested on the removed key: the page shows it downgraded.
				acr, amr := p.text(t, "me-acr"), p.text(t, "me-amr")
				if acr == "aal3" || strings.Contains(amr, "hwk") {
					t.Errorf("after removing the key the page shows acr %q amr %q; want no aal3 or hwk", acr, amr)
				}
				t.Logf("session after the removal: acr %s amr [%s]", acr, amr)
			}
		}},
		{"SecurityActivity", func(t *testing.T) {
			// The sign-ins and factor changes above are in "Recent security
			// activity". Events are written after the answer of the request
			// that caused them, so the list is polled (for a few seconds).
			if !p.visible(t, "view-account") {
				t.Fatal("signed out after the removal: no activity to look at")
			}
			const ev = `document.querySelector('#events li[data-type="%s"]')`
			p.waitWithin(t, 5*time.Second, fmt.Sprintf(ev, "login.success")+" && "+fmt.Sprintf(ev, "factor.removed"),
				"a sign-in and the removal in the activity list")
			// The 10 newest show; the rest behind "Show all".
			if n := browserEval[int](t, p, `document.querySelectorAll('#events li').length`); n != 10 {
				t.Errorf("%d events listed before Show all, want the 10 newest", n)
			}
			p.click(t, "#events-more")
			p.waitWithin(t, 5*time.Second, fmt.Sprintf(ev, "factor.added"), "a factor added in the activity list")
			browserWant(t, "Show all expanded", browserEval[string](t, p,
				`document.getElementById('events-more').getAttribute('aria-expanded')`), "true")

			type item struct {
				Type, Text, Time, DateTime, Where string
				Current, Tagged                   bool
			}
			items := browserEval[[]item](t, p, `[...document.querySelectorAll('#events li')].map(li => ({
				Type: li.dataset.type,
				Text: li.querySelector('.event-text').textContent,
				Time: li.querySelector('.event-time').textContent,
				DateTime: li.querySelector('.event-time').dateTime,
				Where: li.querySelector('.event-where').textContent,
				Current: li.dataset.current === 'true',
				Tagged: li.querySelector('.event-this').checkVisibility(),
			}))`)
			want := map[string]string{
				"login.success":  "Signed in (aal",
				"factor.added":   "Added a factor (",
				"factor.removed": "Removed a factor (security key or passkey)",
				"session.logout": "Signed out",
			}
			seen := map[string]bool{}
			current, other := 0, 0
			for _, it := range items {
				if prefix, ok := want[it.Type]; ok && !strings.HasPrefix(it.Text, prefix) {
					t.Errorf("%s event reads %q, want it to start with %q", it.Type, it.Text, prefix)
				}
				seen[it.Type] = true
				if it.Time == "" || it.DateTime == "" {
					t.Errorf("%s event without a time: %+v", it.Type, it)
				}
				if !strings.Contains(it.Where, "Chrome") {
					t.Errorf("%s event: where %q, want the browser named", it.Type, it.Where)
				}
				if it.Current != it.Tagged {
					t.Errorf("%s event: this session %v but tagged %v", it.Type, it.Current, it.Tagged)
				}
				if it.Current {
					current++
				} else {
					other++
				}
			}
			for typ := range want {
				if !seen[typ] {
					t.Errorf("no %s event listed", typ)
				}
			}
			// This session began with the password and the key, then removed
			// the key; earlier sessions are not this one: the step-ups were
			// the sign-up session's (RemoveNeedsStepUp) and the recovery
			// code's (RenameFactor). (Events of one second may share a time,
			// so their order is not checked.)
			stepUps := 0
			for _, it := range items {
				if it.Type == "factor.removed" && !it.Current {
					t.Errorf("%s event not marked as this session's", it.Type)
				}
				if it.Type == "session.step_up" {
					stepUps++
					if it.Current {
						t.Errorf("%s event of an earlier session marked as this session's", it.Type)
					}
				}
			}
			if stepUps != 2 {
				t.Errorf("%d session.step_up events listed, want 2 (RemoveNeedsStepUp, RenameFactor)", stepUps)
			}
			if current < 2 || other == 0 {
				t.Errorf("%d events of this session and %d of others, want at least 2 (sign-in, removal) and 1", current, other)
			}
			t.Logf("%d events; newest: %q (%s, %s)", len(items), items[0].Text, items[0].Time, items[0].Where)

			p.click(t, "#events-refresh")
			p.waitOK(t, `document.getElementById('status').textContent.startsWith('Recent activity updated')
				&& document.getElementById('main').getAttribute('aria-busy') !== 'true'`, "the refreshed activity")
			browserWant(t, "focus after Refresh", p.focused(t), "events-refresh")
			p.shot(t, "8-activity")
			p.click(t, "#events-more")
			p.waitFor(t, `document.querySelectorAll('#events li').length === 10`, "the list back to the 10 newest")
		}},
		{"RemovedPasskeyRefused", func(t *testing.T) {
			p.signOut(t)
			if n := len(p.credentials(t, key)); n != 1 {
				t.Fatalf("the authenticator holds %d credentials, want the removed one still there", n)
			}
			p.click(t, "#passkey-login")
			if msg := p.waitError(t); !strings.Contains(msg, "not accepted") {
				t.Errorf("status %q, want the server's refusal (not accepted)", msg)
			}
			if p.visible(t, "view-account") {
				t.Fatal("signed in with a removed passkey")
			}
		}},
		{"SyncedPasskey", func(t *testing.T) {
			p.removeAuthenticator(t, key)
			synced := p.addAuthenticator(t, true)
			const user2, pw2 = "grace", "another long passphrase"
			p.fill(t, "#username", user2)
			p.fill(t, "#password", pw2)
			p.click(t, "#signup")
			p.signedIn(t)
			p.click(t, "#add-key")
			p.waitOK(t, `document.querySelector('#factors li[data-kind="webauthn"]')`, "the new key in the list")
			creds := p.credentials(t, synced)
			if len(creds) != 1 || !creds[0].BackupEligibility {
				t.Fatalf("synced authenticator: %d credentials, want 1 with BE=1", len(creds))
			}
			p.signOut(t)
			p.passwordStep(t, user2, pw2)
			p.waitOK(t, `document.getElementById('view-mfa').checkVisibility()`, "the second-factor view")
			p.waitIdle(t)
			p.click(t, "#webauthn-verify")
			acr, amr := p.signedIn(t)
			browserWant(t, "acr", acr, "aal2")
			browserWant(t, "amr", amr, "pwd swk user mfa")

			p.signOut(t)
			p.click(t, "#passkey-login")
			acr, amr = p.signedIn(t)
			browserWant(t, "acr", acr, "aal2")
			browserWant(t, "amr", amr, "swk user mfa")
			browserWant(t, "username", p.text(t, "me-username"), user2)
		}},
		{"PhoneScreenshot", func(t *testing.T) {
			p.writeShot(t, browserPhonePNG)
			t.Logf("phone-width screenshot of the signed-in page: %s", browserPhonePNG)
		}},
	}
	for _, s := range steps {
		begin := time.Now()
		ok := t.Run(s.name, s.run)
		t.Logf("%s: %v", s.name, time.Since(begin).Round(time.Millisecond))
		if !ok {
			break
		}
	}
	if probs := p.problems(); len(probs) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(probs, "\n"))
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// TestBrowserSessionExpiry: past the access token's lifetime the page
// refreshes it (from the cookie) and the change goes through; once the
// session has ended on the server, the page says so and asks for the
// password again. It runs alongside TestBrowserUI, on a service of its own
// whose access tokens live a minute, the shortest STEPUP_ACCESS_TTL allows.
func TestBrowserSessionExpiry(t *testing.T) {
	t.Parallel()
	chrome := browserChromium(t)
	start := time.Now()
	svc := startService(t, "STEPUP_ACCESS_TTL=1m")
	p := browserOpen(t, chrome, svc.Origin, 3*time.Minute)
	t.Logf("service and browser ready in %v", time.Since(start).Round(time.Millisecond))
	synced := p.addAuthenticator(t, true)

	const user, pw = "grace", "another long passphrase"
	var signedInAt time.Time // just after the page got its access token
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"SyncedPasskey", func(t *testing.T) {
			p.fill(t, "#username", user)
			p.fill(t, "#password", pw)
			p.click(t, "#signup")
			p.signedIn(t)
			p.click(t, "#add-key")
			p.waitOK(t, `document.querySelector('#factors li[data-kind="webauthn"]')`, "the new key in the list")
			if creds := p.credentials(t, synced); len(creds) != 1 || !creds[0].BackupEligibility {
				t.Fatalf("synced authenticator: %d credentials, want 1 with BE=1", len(creds))
			}
			p.signOut(t)
			p.click(t, "#passkey-login")
			acr, amr := p.signedIn(t)
			signedInAt = time.Now()
			browserWant(t, "acr", acr, "aal2")
			browserWant(t, "amr", amr, "swk user mfa")
		}},
		{"ExpiredAccessTokenRefreshes", func(t *testing.T) {
			// The service runs on the real clock: the test waits out the
			// token's minute and the verifier's 5 s leeway, while
			// TestBrowserUI runs alongside.
			wait := time.Until(signedInAt.Add(time.Minute + 5*time.Second + 2*time.Second))
			t.Logf("waiting %v for the access token to expire", wait.Round(time.Second))
			time.Sleep(wait)
			const refreshes = `performance.getEntriesByType('resource').filter(e => new URL(e.name).pathname === '/v1/token/refresh').length`
			before := browserEval[int](t, p, refreshes)
			p.click(t, `#factors li[data-kind="webauthn"] .rename`)
			p.fill(t, `#factors li[data-kind="webauthn"] .rename-input`, "Grace’s phone")
			p.click(t, `#factors li[data-kind="webauthn"] .rename-save`)
			p.waitOK(t, `(document.querySelector('#factors li[data-kind="webauthn"] .factor-name')||{}).textContent === 'Grace’s phone'`,
				"the new name after a refresh")
			if n := browserEval[int](t, p, refreshes) - before; n != 1 {
				t.Errorf("the page refreshed its token %d times for the rename, want 1 (the access token had expired)", n)
			}
		}},
		{"EndedSessionAsksForPassword", func(t *testing.T) {
			// The session ends on the server. Its idle limit cannot be waited
			// out here (STEPUP_SESSION_IDLE is 5 minutes at the least): an
			// operator ends it instead, with `stepup admin reset`, which ends
			// every session of the account. The page learns it the same way
			// as after the idle limit, at its next call: 401, then its
			// refresh is refused.
			t.Logf("stepup admin reset: %s", svc.admin(t, "reset", user))
			p.click(t, `#factors li[data-kind="webauthn"] .rename`)
			p.fill(t, `#factors li[data-kind="webauthn"] .rename-input`, "Too late")
			p.click(t, `#factors li[data-kind="webauthn"] .rename-save`)
			msg := p.waitError(t)
			if !strings.Contains(msg, "session has ended") {
				t.Errorf("status %q, want it to say the session has ended", msg)
			}
			if !p.visible(t, "view-signin") {
				t.Fatal("an ended session left the page signed in")
			}
			browserWant(t, "username kept", browserEval[string](t, p, `document.getElementById('username').value`), user)
			browserWant(t, "focus", p.focused(t), "password")
		}},
	}
	for _, s := range steps {
		begin := time.Now()
		ok := t.Run(s.name, s.run)
		t.Logf("%s: %v", s.name, time.Since(begin).Round(time.Millisecond))
		if !ok {
			break
		}
	}
	if probs := p.problems(); len(probs) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(probs, "\n"))
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}
