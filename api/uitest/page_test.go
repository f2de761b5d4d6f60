package uitest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// Helpers of the browser tests (ui_test.go): Chromium, a tab showing the
// page, and the DevTools virtual authenticator. The service itself is in
// service_test.go.

// browserChromium returns the path of a Chromium or Chrome binary. Without
// one the test is skipped, except under CI, where that is a failure.
func browserChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium on PATH under CI: install it (apt-get install -y chromium)")
	}
	t.Skip("install Chromium: apt-get install -y chromium")
	return ""
}

// browserPage is one tab showing the page.
type browserPage struct {
	ctx context.Context
}

// browserWatch records what must never happen on the page: a CSP violation,
// an uncaught exception or an unhandled rejection. It runs before the page's
// own scripts.
const browserWatch = `window.__uiProblems = [];
document.addEventListener('securitypolicyviolation', (e) =>
  window.__uiProblems.push('CSP ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber));
window.addEventListener('error', (e) => window.__uiProblems.push('error: ' + e.message + ' at ' + e.filename + ':' + e.lineno));
window.addEventListener('unhandledrejection', (e) => window.__uiProblems.push('unhandled rejection: ' + e.reason));`

// browserOpen starts Chromium with a fresh profile and opens the page. The
// whole session with the browser must end within limit.
func browserOpen(t *testing.T, chrome, origin string, limit time.Duration) *browserPage {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(1024, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelTab := chromedp.NewContext(alloc)
	ctx, cancelTime := context.WithTimeout(ctx, limit)
	t.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc()
	})
	p := &browserPage{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: browserWatch}); err != nil {
		t.Fatalf("install page watch: %v", err)
	}
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	p.do(t, chromedp.Navigate(origin+"/ui/"))
	p.waitVisible(t, "view-signin")
	return p
}

// do runs actions, each query waiting at most 20 s for its element.
func (p *browserPage) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v (status: %q)", err, p.statusText())
	}
}

// browserEval evaluates a JavaScript expression and decodes its value into T.
func browserEval[T any](t *testing.T, p *browserPage, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds; on a timeout it
// reports what the page's status region says.
func (p *browserPage) waitFor(t *testing.T, cond, what string) {
	t.Helper()
	p.waitWithin(t, 20*time.Second, cond, what)
}

// waitWithin is waitFor with a time limit of d.
func (p *browserPage) waitWithin(t *testing.T, d time.Duration, cond, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || p.ctx.Err() != nil {
			t.Fatalf("waiting for %s: timed out (err %v); status %q; page problems %v", what, err, p.statusText(), p.problems())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func browserJS(s string) string { return strconv.Quote(s) }

func (p *browserPage) waitVisible(t *testing.T, id string) {
	t.Helper()
	p.waitFor(t, "(e => e && e.checkVisibility())(document.getElementById("+browserJS(id)+"))", "#"+id+" visible")
}

func (p *browserPage) visible(t *testing.T, id string) bool {
	t.Helper()
	return browserEval[bool](t, p, "(e => !!e && e.checkVisibility())(document.getElementById("+browserJS(id)+"))")
}

func (p *browserPage) text(t *testing.T, id string) string {
	t.Helper()
	return browserEval[string](t, p, "document.getElementById("+browserJS(id)+").textContent.trim()")
}

func (p *browserPage) statusText() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById('status')||{}).textContent||''`))
	return s
}

func (p *browserPage) problems() []string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__uiProblems || []`))
	return s
}

func (p *browserPage) focused(t *testing.T) string {
	t.Helper()
	return browserEval[string](t, p, "document.activeElement ? document.activeElement.id : ''")
}

// fill replaces the value of an input by typing into it.
func (p *browserPage) fill(t *testing.T, sel chromedp.CSS, text string) {
	t.Helper()
	// (chromedp.Clear resets the value attribute, not what was typed, and
	// SetValue refuses an empty value.)
	browserEval[bool](t, p, "(e => (e.value = '', true))(document.querySelector("+browserJS(string(sel))+"))")
	p.do(t, chromedp.SendKeys(sel, text))
}

// click clicks sel once the page has finished its current action: while
// one runs, every button is disabled and a click is lost (as a person's
// would be), which made a click right after an action's visible result
// race the action's tail (its activity poll).
func (p *browserPage) click(t *testing.T, sel chromedp.CSS) {
	t.Helper()
	p.waitIdle(t)
	p.do(t, chromedp.Click(sel))
}

// waitOK waits for cond after an action that should succeed; an error
// message on the page fails at once, with that message.
func (p *browserPage) waitOK(t *testing.T, cond, what string) {
	t.Helper()
	p.waitFor(t, "("+cond+") || "+browserFailed, what)
	if ok := browserEval[bool](t, p, "!!("+cond+")"); !ok {
		t.Fatalf("waiting for %s: the page says %q", what, p.statusText())
	}
}

// browserFailed holds when the page has finished an action with an error.
const browserFailed = `(document.getElementById('status').dataset.tone === 'error' && document.getElementById('main').getAttribute('aria-busy') !== 'true')`

// waitIdle waits until the page has finished its current action.
func (p *browserPage) waitIdle(t *testing.T) {
	t.Helper()
	p.waitFor(t, `document.getElementById('main').getAttribute('aria-busy') !== 'true'`, "page idle")
}

// waitError waits for an error message in the status region and returns it.
func (p *browserPage) waitError(t *testing.T) string {
	t.Helper()
	p.waitFor(t, browserFailed, "an error message")
	return p.text(t, "status")
}

// signedIn waits for the account view and returns what it shows of the
// token: acr and the amr values, space-separated.
func (p *browserPage) signedIn(t *testing.T) (acr, amr string) {
	t.Helper()
	p.waitOK(t, `document.getElementById('view-account').checkVisibility() && document.getElementById('me-acr').textContent !== ''
		&& document.getElementById('main').getAttribute('aria-busy') !== 'true'`, "the account view")
	return p.text(t, "me-acr"), p.text(t, "me-amr")
}

func (p *browserPage) signOut(t *testing.T) {
	t.Helper()
	if !p.visible(t, "logout") {
		p.waitVisible(t, "view-signin") // signed out already
		return
	}
	p.click(t, "#logout")
	p.waitVisible(t, "view-signin")
	p.waitIdle(t)
	if got := p.focused(t); got != "username" {
		t.Errorf("focus after sign-out on #%s, want #username", got)
	}
}

func (p *browserPage) passwordStep(t *testing.T, username, password string) {
	t.Helper()
	p.fill(t, "#username", username)
	p.fill(t, "#password", password)
	p.click(t, "#login")
}

// shot saves a phone-width screenshot of the page as NAME.png in the folder
// named by STEPUP_UI_SHOTS, for a person to look at; without it, nothing.
func (p *browserPage) shot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("STEPUP_UI_SHOTS")
	if dir == "" {
		return
	}
	p.writeShot(t, filepath.Join(dir, name+".png"))
}

// writeShot saves a full-page screenshot at 390x844 CSS px (a phone), then
// restores the window's size.
func (p *browserPage) writeShot(t *testing.T, file string) {
	t.Helper()
	p.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	defer func() {
		if _, err := chromedp.Call(p.ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
			t.Errorf("clear device metrics: %v", err)
		}
		p.do(t, chromedp.EmulateViewport(0, 0))
	}()
	// Nothing may overflow sideways at phone width.
	if w := browserEval[int](t, p, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("%s: page is %d CSS px wide at a 390 px viewport", file, w)
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// browserAuthenticator is a DevTools virtual authenticator: CTAP2, built in
// (a platform authenticator), with resident keys and user verification.
type browserAuthenticator struct {
	id webauthn.AuthenticatorID
}

func (p *browserPage) addAuthenticator(t *testing.T, synced bool) browserAuthenticator {
	t.Helper()
	res, err := chromedp.Call(p.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   webauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
			DefaultBackupEligibility:    synced,
			DefaultBackupState:          synced,
		}})
	if err != nil {
		t.Fatalf("add virtual authenticator: %v", err)
	}
	return browserAuthenticator{id: res.AuthenticatorID}
}

func (p *browserPage) removeAuthenticator(t *testing.T, a browserAuthenticator) {
	t.Helper()
	if _, err := chromedp.Call(p.ctx, webauthn.RemoveVirtualAuthenticator,
		webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: a.id}); err != nil {
		t.Fatalf("remove virtual authenticator: %v", err)
	}
}

func (p *browserPage) credentials(t *testing.T, a browserAuthenticator) []*webauthn.Credential {
	t.Helper()
	res, err := chromedp.Call(p.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: a.id})
	if err != nil {
		t.Fatalf("get credentials: %v", err)
	}
	return res.Credentials
}

func (p *browserPage) setUserVerified(t *testing.T, a browserAuthenticator, ok bool) {
	t.Helper()
	if _, err := chromedp.Call(p.ctx, webauthn.SetUserVerified,
		webauthn.SetUserVerifiedParams{AuthenticatorID: a.id, IsUserVerified: ok}); err != nil {
		t.Fatalf("set user verified: %v", err)
	}
}

// overrideUV makes the authenticator report UV=0 in its responses while it
// did verify the user: the browser passes such an assertion on, so only the
// server can refuse it.
func (p *browserPage) overrideUV(t *testing.T, a browserAuthenticator, badUV bool) {
	t.Helper()
	if _, err := chromedp.Call(p.ctx, webauthn.SetResponseOverrideBits,
		webauthn.SetResponseOverrideBitsParams{AuthenticatorID: a.id, IsBadUV: &badUV}); err != nil {
		t.Fatalf("set response override bits: %v", err)
	}
}

// browserKeyAssurance is what the policy grants a WebAuthn factor with the
// authenticator's BE flag: device-bound aal3 hwk, synced aal2 swk.
func browserKeyAssurance(backupEligible bool) (acr, key string) {
	if backupEligible {
		return "aal2", "swk"
	}
	return "aal3", "hwk"
}

func browserWant(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}
