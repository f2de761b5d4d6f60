package main

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/tokens"
)

// TestFlow walks the whole sign-in of issue #2 over HTTP: sign-up, password
// only sign-in at aal1, TOTP enrollment and confirmation, then password plus
// TOTP at aal2, and what the access token and /v1/me say afterwards.
func TestFlow(t *testing.T) {
	a := startApp(t, appOptions{})
	const username, password = "flow-user", "correct horse battery staple"
	var (
		user       signupResult
		aal1       loginResult
		enr        factorResult
		secret     []byte
		mfaToken   string
		aal2       loginResult
		verifiedAt time.Time
	)
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("SignUpCreatesUser", func(t *testing.T) {
		r := a.post(t, "/v1/users", "", credentials{username, password})
		r.decode(t, http.StatusCreated, &user)
		if user.ID == "" || user.Username != username {
			t.Fatalf("got %+v, want an id and username %q", user, username)
		}
	})

	step("PasswordOnlyGivesAAL1", func(t *testing.T) {
		r := a.post(t, "/v1/login", "", credentials{username, password})
		r.decode(t, http.StatusOK, &aal1)
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", got)
		}
		if aal1.Status != "authenticated" || aal1.TokenType != "Bearer" || aal1.ACR != "aal1" ||
			!slices.Equal(aal1.AMR, []string{"pwd"}) || aal1.ExpiresIn != 900 || aal1.RefreshToken == "" {
			t.Fatalf("got %+v, want authenticated Bearer, acr aal1, amr [pwd], expires_in 900, a refresh token", aal1)
		}
		c := parseJWT(t, aal1.AccessToken).Claims
		if c["acr"] != "aal1" || !slices.Equal(strList(c["amr"]), []string{"pwd"}) || c["sub"] != user.ID {
			t.Errorf("access token claims %v: want acr aal1, amr [pwd], sub %s", c, user.ID)
		}
	})

	step("EnrollTOTPReturnsSecretURIAndQR", func(t *testing.T) {
		r := a.post(t, "/v1/me/factors/totp", aal1.AccessToken, nil)
		r.decode(t, http.StatusCreated, &enr)
		if enr.ID == "" || enr.Kind != "totp" || enr.Confirmed {
			t.Errorf("factor %+v: want an id, kind totp, unconfirmed", enr)
		}
		if got := r.Header.Get("Location"); got != "/v1/me/factors/"+enr.ID {
			t.Errorf("Location = %q, want /v1/me/factors/%s", got, enr.ID)
		}
		if len(enr.Secret) < 32 {
			t.Errorf("secret %q has %d base32 characters, want ≥ 32 (160 bits)", enr.Secret, len(enr.Secret))
		}
		secret = decodeBase32(t, enr.Secret)
		if len(secret) < 20 {
			t.Errorf("secret decodes to %d bytes, want ≥ 20", len(secret))
		}
		checkOTPAuthURI(t, enr.URI, enr.Secret, username)
		checkQR(t, enr.QR)
	})

	step("FactorInactiveUntilConfirmed", func(t *testing.T) {
		if l := a.login(t, username, password); l.Status != "authenticated" || l.ACR != "aal1" {
			t.Fatalf("login before confirmation: %+v, want authenticated at aal1", l)
		}
	})

	step("ConfirmWithCode", func(t *testing.T) {
		// The previous step's code: the current one stays unused for the
		// sign-in below, which must use a step of its own.
		var f factorResult
		a.post(t, "/v1/me/factors/totp/"+enr.ID+"/confirm", aal1.AccessToken, codeBody{totpCode(secret, a.Clock.step()-1)}).
			decode(t, http.StatusOK, &f)
		if !f.Confirmed || f.ID != enr.ID || f.Secret != "" {
			t.Fatalf("got %+v, want factor %s confirmed, no secret", f, enr.ID)
		}
		// The first factor brings the first recovery codes, shown this once.
		seen := map[string]bool{}
		for _, c := range f.RecoveryCodes {
			seen[c] = true
		}
		if len(f.RecoveryCodes) != 10 || len(seen) != 10 {
			t.Errorf("recovery codes %q: want 10 distinct", f.RecoveryCodes)
		}
	})

	step("LoginNowRequiresMFA", func(t *testing.T) {
		var l struct {
			Status    string   `json:"status"`
			MFAToken  string   `json:"mfa_token"`
			ExpiresIn int      `json:"expires_in"`
			Factors   []string `json:"factors"`
			Access    *string  `json:"access_token"`
		}
		a.post(t, "/v1/login", "", credentials{username, password}).decode(t, http.StatusOK, &l)
		if l.Status != "mfa_required" || l.MFAToken == "" || !slices.Equal(l.Factors, []string{"totp", "recovery"}) ||
			l.ExpiresIn != 300 || l.Access != nil {
			t.Fatalf("got %+v, want mfa_required, an mfa_token, factors [totp recovery], expires_in 300, no access_token", l)
		}
		p := parseJWT(t, l.MFAToken)
		if p.Header["typ"] != "mfa-pending+jwt" || p.Claims["scope"] != "mfa_pending" ||
			!slices.Equal(strList(p.Claims["aud"]), []string{testIssuer + "/v1/mfa"}) ||
			!slices.Equal(strList(p.Claims["amr"]), []string{"pwd"}) || p.Claims["sub"] != user.ID ||
			numClaim(t, p.Claims, "exp")-numClaim(t, p.Claims, "iat") != 300 {
			t.Errorf("mfa_token header %v claims %v: want typ mfa-pending+jwt, scope mfa_pending, aud %s/v1/mfa, amr [pwd], 5 min",
				p.Header, p.Claims, testIssuer)
		}
		mfaToken = l.MFAToken
	})

	step("VerifyWithNextCodeGivesAAL2", func(t *testing.T) {
		a.Clock.Advance(5 * time.Second) // auth_time is the second factor's time, not the password's
		verifiedAt = a.Clock.Now()
		r := a.verify(t, mfaToken, totpCode(secret, a.Clock.step()))
		r.decode(t, http.StatusOK, &aal2)
		if aal2.Status != "authenticated" || aal2.ACR != "aal2" || !slices.Equal(aal2.AMR, []string{"pwd", "otp", "mfa"}) ||
			aal2.RefreshToken == "" || aal2.ExpiresIn != 900 {
			t.Fatalf("got %+v, want authenticated at aal2 with amr [pwd otp mfa]", aal2)
		}
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", got)
		}
	})

	step("AccessTokenProfile", func(t *testing.T) {
		p := parseJWT(t, aal2.AccessToken)
		kid, _ := p.Header["kid"].(string)
		if p.Header["alg"] != "ES256" || p.Header["typ"] != "at+jwt" || kid == "" {
			t.Errorf("header %v: want alg ES256, typ at+jwt, a kid", p.Header)
		}
		pub, _ := a.publicKey(t, kid)
		if !verifyES256(pub, p) {
			t.Errorf("signature does not verify with JWKS key %s", kid)
		}
		c := p.Claims
		want := []string{"acr", "amr", "aud", "auth_time", "client_id", "exp", "iat", "iss", "jti", "sid", "sub"}
		var got []string
		for k := range c {
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("claims %v, want exactly %v", got, want)
		}
		now := verifiedAt.Unix()
		for _, check := range []struct {
			name string
			ok   bool
		}{
			{"iss", c["iss"] == testIssuer},
			{"sub", c["sub"] == user.ID},
			{"aud", slices.Equal(strList(c["aud"]), []string{"stepup"})},
			{"client_id", c["client_id"] == "stepup"},
			{"iat", numClaim(t, c, "iat") == now},
			{"exp", numClaim(t, c, "exp") == now+900},
			{"auth_time", numClaim(t, c, "auth_time") == now},
			{"jti", c["jti"] != "" && c["jti"] != parseJWT(t, aal1.AccessToken).Claims["jti"]},
			{"sid", c["sid"] != "" && c["sid"] != parseJWT(t, aal1.AccessToken).Claims["sid"]},
			{"acr", c["acr"] == "aal2"},
			{"amr", slices.Equal(strList(c["amr"]), []string{"pwd", "otp", "mfa"})},
		} {
			if !check.ok {
				t.Errorf("claim %s = %v: wrong (verified at %d, user %s)", check.name, c[check.name], now, user.ID)
			}
		}
	})

	step("MeShowsAssurance", func(t *testing.T) {
		var me meResult
		a.get(t, "/v1/me", aal2.AccessToken).decode(t, http.StatusOK, &me)
		sid := parseJWT(t, aal2.AccessToken).Claims["sid"]
		if me.ID != user.ID || me.Username != username || me.SID != sid || me.ACR != "aal2" ||
			!slices.Equal(me.AMR, []string{"pwd", "otp", "mfa"}) || !me.AuthTime.Equal(verifiedAt) {
			t.Fatalf("got %+v, want user %s, sid %v, aal2, [pwd otp mfa], auth_time %v", me, user.ID, sid, verifiedAt)
		}
	})

	step("FactorsListedWithoutSecret", func(t *testing.T) {
		r := a.get(t, "/v1/me/factors", aal2.AccessToken)
		var out struct {
			Factors []map[string]any `json:"factors"`
		}
		r.decode(t, http.StatusOK, &out)
		if len(out.Factors) != 1 {
			t.Fatalf("got %d factors, want 1: %s", len(out.Factors), r.Body)
		}
		f := out.Factors[0]
		if f["id"] != enr.ID || f["kind"] != "totp" || f["confirmed"] != true || f["name"] == "" || f["last_used_at"] == nil {
			t.Errorf("factor %v: want id %s, kind totp, confirmed, a name, last_used_at", f, enr.ID)
		}
		for _, leak := range []string{enr.Secret, base64.StdEncoding.EncodeToString(secret), "secret", "otpauth"} {
			if bytes.Contains(r.Body, []byte(leak)) {
				t.Errorf("factor list %s contains %q", r.Body, leak)
			}
		}
	})
}

// checkOTPAuthURI checks the Key URI Format authenticator apps read.
func checkOTPAuthURI(t *testing.T, uri, secret, account string) {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("otpauth_uri %q: %v", uri, err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" {
		t.Errorf("otpauth_uri %q: want otpauth://totp/", uri)
	}
	if want := "/localhost:" + account; u.Path != want {
		t.Errorf("otpauth_uri label %q, want %q", u.Path, want)
	}
	for k, want := range map[string]string{"secret": secret, "issuer": "localhost", "digits": "6", "period": "30", "algorithm": "SHA1"} {
		if got := q.Get(k); got != want {
			t.Errorf("otpauth_uri %s = %q, want %q", k, got, want)
		}
	}
}

// checkQR checks the data URI holds a PNG QR code drawn at a whole number
// of pixels per module, with a white quiet zone of four modules around it.
func checkQR(t *testing.T, dataURI string) {
	t.Helper()
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(dataURI, prefix) {
		t.Fatalf("qr_png starts %.30q, want %q", dataURI, prefix)
	}
	raw, err := base64.StdEncoding.DecodeString(dataURI[len(prefix):])
	if err != nil {
		t.Fatalf("qr_png base64: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("qr_png is not a PNG: %v", err)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	const scale, quiet = 6, 4
	modules := w/scale - 2*quiet
	if w != h || w%scale != 0 || modules < 21 || (modules-21)%4 != 0 {
		t.Fatalf("QR image %dx%d: want square, %d px per module, 21+4k modules plus the quiet zone", w, h, scale)
	}
	gray := func(x, y int) uint8 { return color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y }
	border := quiet * scale
	for y := range h {
		for x := range w {
			inZone := x < border || y < border || x >= w-border || y >= h-border
			if inZone && gray(x, y) != 0xff {
				t.Fatalf("pixel (%d,%d) in the quiet zone is %d, want white", x, y, gray(x, y))
			}
		}
	}
	// The three finder patterns start with a dark module at their outer
	// corners, just inside the quiet zone.
	for _, p := range []image.Point{{border, border}, {w - border - 1, border}, {border, h - border - 1}} {
		if gray(p.X, p.Y) != 0 {
			t.Errorf("finder corner (%d,%d) is %d, want black", p.X, p.Y, gray(p.X, p.Y))
		}
	}
}

// TestReplay shows that a TOTP step is accepted once per factor and that
// steps never go backwards, all within one ±1 step window.
func TestReplay(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "replay-user") // confirmed with step s-1
	s := a.Clock.step()
	tokens := make([]string, 4)
	for i := range tokens {
		tokens[i] = a.mfaToken(t, u.Username, u.Password)
	}

	t.Run("AcceptsNextStep", func(t *testing.T) {
		if r := a.verify(t, tokens[0], u.code(s+1)); r.Status != http.StatusOK {
			t.Fatalf("step s+1: status %d, want 200; %s", r.Status, r.Body)
		}
	})
	t.Run("ReusedCode", func(t *testing.T) {
		a.verify(t, tokens[1], u.code(s+1)).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
	})
	t.Run("EarlierUnusedStep", func(t *testing.T) {
		// Step s is in the window and was never accepted, but s+1 was.
		a.verify(t, tokens[2], u.code(s)).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
	})
	t.Run("ConfirmationCode", func(t *testing.T) {
		a.verify(t, tokens[3], u.code(s-1)).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
	})
	t.Run("NextFreshStepAccepted", func(t *testing.T) {
		// The refused tokens are still good: once the clock moves on, a
		// never-used later step signs in with one of them.
		a.Clock.Advance(30 * time.Second)
		if r := a.verify(t, tokens[2], u.code(s+2)); r.Status != http.StatusOK {
			t.Fatalf("step s+2: status %d, want 200; %s", r.Status, r.Body)
		}
	})
}

// TestTokenKinds shows every endpoint accepts exactly one kind of token.
func TestTokenKinds(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "kinds-user")
	s := a.Clock.step()
	used := a.mfaToken(t, u.Username, u.Password)
	var tok loginResult
	a.verify(t, used, u.code(s)).decode(t, http.StatusOK, &tok)
	fresh := a.mfaToken(t, u.Username, u.Password)

	wantInvalidToken := func(t *testing.T, r response) {
		t.Helper()
		r.wantProblem(t, http.StatusUnauthorized, "invalid_token")
		if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") || !strings.Contains(got, `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate = %q, want a Bearer invalid_token challenge", got)
		}
	}
	t.Run("UsedMFATokenRefused", func(t *testing.T) {
		wantInvalidToken(t, a.verify(t, used, u.code(s+1)))
	})
	t.Run("MFATokenRefusedByMe", func(t *testing.T) {
		wantInvalidToken(t, a.get(t, "/v1/me", fresh))
		wantInvalidToken(t, a.get(t, "/v1/me/factors", fresh))
		wantInvalidToken(t, a.post(t, "/v1/me/factors/totp", fresh, nil))
	})
	t.Run("AccessTokenRefusedByVerify", func(t *testing.T) {
		wantInvalidToken(t, a.verify(t, tok.AccessToken, u.code(s+1)))
	})
	t.Run("RefreshTokenRefusedAsBearer", func(t *testing.T) {
		wantInvalidToken(t, a.get(t, "/v1/me", tok.RefreshToken))
		wantInvalidToken(t, a.verify(t, tok.RefreshToken, u.code(s+1)))
	})
	t.Run("RightTokensStillWork", func(t *testing.T) {
		// Controls: the refusals above were about the token's kind.
		if r := a.get(t, "/v1/me", tok.AccessToken); r.Status != http.StatusOK {
			t.Errorf("access token on /v1/me: status %d, want 200", r.Status)
		}
		if r := a.verify(t, fresh, u.code(s+1)); r.Status != http.StatusOK {
			t.Errorf("unused mfa_token with step s+1: status %d, want 200; %s", r.Status, r.Body)
		}
	})
}

// TestRefresh shows rotation keeps the authentication facts, and reuse of a
// rotated token ends the whole session.
func TestRefresh(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "refresh-user")
	var t0 loginResult
	a.verify(t, a.mfaToken(t, u.Username, u.Password), u.code(a.Clock.step())).decode(t, http.StatusOK, &t0)
	c0 := parseJWT(t, t0.AccessToken).Claims
	a.Clock.Advance(time.Minute)

	var t1 loginResult
	t.Run("RotationReturnsNewTokens", func(t *testing.T) {
		r := a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": t0.RefreshToken})
		r.decode(t, http.StatusOK, &t1)
		if t1.RefreshToken == "" || t1.RefreshToken == t0.RefreshToken || t1.AccessToken == "" || t1.AccessToken == t0.AccessToken {
			t.Fatalf("got %+v, want a new refresh and access token", t1)
		}
	})
	if t1.AccessToken == "" {
		t.FailNow()
	}
	t.Run("KeepsAuthTimeACRAMR", func(t *testing.T) {
		c1 := parseJWT(t, t1.AccessToken).Claims
		if numClaim(t, c1, "auth_time") != numClaim(t, c0, "auth_time") || c1["acr"] != "aal2" ||
			!slices.Equal(strList(c1["amr"]), strList(c0["amr"])) || c1["sid"] != c0["sid"] {
			t.Errorf("refreshed claims %v, want auth_time, acr, amr and sid of %v", c1, c0)
		}
		if got, want := numClaim(t, c1, "iat"), a.Clock.Now().Unix(); got != want {
			t.Errorf("refreshed iat = %d, want %d (now)", got, want)
		}
		if r := a.get(t, "/v1/me", t1.AccessToken); r.Status != http.StatusOK {
			t.Errorf("refreshed access token on /v1/me: status %d, want 200", r.Status)
		}
	})
	t.Run("ReuseRevokesFamily", func(t *testing.T) {
		a.Clock.Advance(tokens.DefaultGrace) // past the two-tabs grace: a reuse now is a reuse
		a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": t0.RefreshToken}).
			wantProblem(t, http.StatusBadRequest, "invalid_grant")
		a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": t1.RefreshToken}).
			wantProblem(t, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("SessionAccessTokensRefused", func(t *testing.T) {
		a.get(t, "/v1/me", t1.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
		a.get(t, "/v1/me", t0.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
	})
	t.Run("UnknownTokenRefused", func(t *testing.T) {
		a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": "bm90LWEtdG9rZW4"}).
			wantProblem(t, http.StatusBadRequest, "invalid_grant")
	})
}

// TestInstancesActAsOne hops every step of a sign-in to another of three
// instances sharing a database: they publish one key set, and a code, a
// refresh token or a session ended on one instance is spent or ended on all.
func TestInstancesActAsOne(t *testing.T) {
	apps := startApps(t, 3, appOptions{})
	a, b, c := apps[0], apps[1], apps[2]

	t.Run("OneKeySet", func(t *testing.T) {
		ja, _ := a.jwks(t)
		for _, other := range apps[1:] {
			if jo, _ := other.jwks(t); !bytes.Equal(jo, ja) {
				t.Errorf("JWKS differ:\n%s\n%s", ja, jo)
			}
		}
	})

	const name, pw = "hopper", "hop between instances"
	a.signup(t, name, pw)
	aal1 := b.login(t, name, pw)
	var enr factorResult
	c.post(t, "/v1/me/factors/totp", aal1.AccessToken, nil).decode(t, http.StatusCreated, &enr)
	secret := decodeBase32(t, enr.Secret)
	s := a.Clock.step()
	a.post(t, "/v1/me/factors/totp/"+enr.ID+"/confirm", aal1.AccessToken, codeBody{totpCode(secret, s-1)}).
		decode(t, http.StatusOK, &factorResult{})

	var tok loginResult
	t.Run("SignInAcrossInstances", func(t *testing.T) {
		mt := b.mfaToken(t, name, pw)
		c.verify(t, mt, totpCode(secret, s)).decode(t, http.StatusOK, &tok)
		var me meResult
		a.get(t, "/v1/me", tok.AccessToken).decode(t, http.StatusOK, &me)
		if me.ACR != "aal2" {
			t.Errorf("acr %q on another instance, want aal2", me.ACR)
		}
	})
	if tok.AccessToken == "" {
		t.FailNow()
	}
	t.Run("StepSpentEverywhere", func(t *testing.T) {
		for _, other := range []*testApp{a, b} {
			other.verify(t, other.mfaToken(t, name, pw), totpCode(secret, s)).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
		}
	})
	t.Run("RefreshReuseAcrossInstances", func(t *testing.T) {
		var next loginResult
		a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}).decode(t, http.StatusOK, &next)
		a.Clock.Advance(tokens.DefaultGrace) // past the two-tabs grace
		b.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}).
			wantProblem(t, http.StatusBadRequest, "invalid_grant")
		c.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": next.RefreshToken}).
			wantProblem(t, http.StatusBadRequest, "invalid_grant")
		for _, other := range apps {
			other.get(t, "/v1/me", next.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
		}
	})
}
