// Package uitest drives the service's built-in page (/ui/) in real headless
// Chromium, with the DevTools virtual authenticator in place of a security
// key. It is a module of its own so that chromedp and cdproto stay out of
// the service's go.mod: importers of tokens/guard do not inherit them.
//
// The tests are black-box: they build cmd/stepup from the repository root
// (../..) once per run, start the binary as a separate process on a free
// localhost port with a fresh data folder (the embedded store), wait for
// /readyz, and look only at what the page shows. Chromium must be on PATH
// (apt-get install -y chromium); without it the tests skip, except under CI.
//
// Run with: cd api/uitest && go test ./...
//
// STEPUP_UI_SHOTS=DIR saves a phone-width screenshot of each step in DIR.
package uitest
