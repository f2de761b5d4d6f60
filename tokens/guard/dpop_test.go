package guard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/tokens"
	"github.com/stepup-auth/stepup/tokens/guard/guardtest"
)

// publicURL is the resource server's configured public URL; the tests'
// requests reach it on a loopback listener with another address, so a
// proof made for the listener's URL (what a Host-header guess would give)
// is refused.
const publicURL = "https://api.example.com"

// dpopServer runs a resource server over real HTTP: /resource accepts
// Bearer and DPoP, /dpop-only requires DPoP, /stepup requires aal2 within 5
// minutes.
type dpopServer struct {
	as  *guardtest.Server
	g   *Guard
	srv *httptest.Server
}

func newDPoPServer(t *testing.T, mod func(*Config)) *dpopServer {
	t.Helper()
	as := guardtest.NewServer(t, guardtest.Options{})
	cfg := Config{Issuer: as.URL, Audience: as.Audience, Now: as.Now, URL: publicURL}
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(newJWKS(t, as, nil), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/resource", g.Require("", 0)(echo))
	if cfg.URL != "" {
		mux.Handle("/dpop-only", g.Middleware(Requirement{DPoP: true})(echo))
		// Two guards stacked: one proof, checked (and used up) once.
		mux.Handle("/stacked", g.Require("aal1", 0)(g.Middleware(Requirement{DPoP: true})(echo)))
	}
	mux.Handle("/stepup", g.Require("aal2", 5*time.Minute)(echo))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &dpopServer{as: as, g: g, srv: srv}
}

// do sends method path with an Authorization value and proofs (each a
// DPoP header).
func (s *dpopServer) do(t *testing.T, method, path, authorization string, proofs ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, s.srv.URL+path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	res, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// wantDPoP fails t unless res is 401 with a DPoP challenge carrying code.
func wantDPoP(t *testing.T, res *http.Response, code string) {
	t.Helper()
	ch := res.Header.Values("WWW-Authenticate")
	if res.StatusCode != 401 || len(ch) != 1 ||
		!strings.HasPrefix(ch[0], `DPoP realm="stepup", algs="ES256 EdDSA", error="`+code+`"`) {
		t.Fatalf("status %d, WWW-Authenticate %q; want 401 with a DPoP challenge, error %q", res.StatusCode, ch, code)
	}
}

func wantOK(t *testing.T, res *http.Response) {
	t.Helper()
	if res.StatusCode != 200 {
		t.Fatalf("status %d (WWW-Authenticate %q), want 200", res.StatusCode, res.Header.Values("WWW-Authenticate"))
	}
}

func TestDPoP(t *testing.T) {
	s := newDPoPServer(t, nil)
	now := s.as.Now()
	k := guardtest.NewDPoPKey(t, tokens.ES256)
	tok := s.as.BoundToken(t, k, "aal1", []string{"pwd"}, now)
	bearer := s.as.Token(t, "aal1", []string{"pwd"}, now)
	proof := func(p guardtest.Proof) string {
		if p.Method == "" {
			p.Method = "GET"
		}
		if p.URL == "" {
			p.URL = publicURL + "/resource"
		}
		if p.IAT.IsZero() {
			p.IAT = s.as.Now()
		}
		return k.Proof(t, p)
	}

	t.Run("RightProof", func(t *testing.T) {
		wantOK(t, s.do(t, "GET", "/resource", "DPoP "+tok, proof(guardtest.Proof{Token: tok})))
		// query and fragment are not part of the comparison
		wantOK(t, s.do(t, "GET", "/resource?x=1", "DPoP "+tok, proof(guardtest.Proof{Token: tok, URL: publicURL + "/resource?y=2"})))
	})
	t.Run("EdDSAKey", func(t *testing.T) {
		ek := guardtest.NewDPoPKey(t, tokens.EdDSA)
		etok := s.as.BoundToken(t, ek, "aal1", []string{"pwd"}, now)
		wantOK(t, s.do(t, "GET", "/resource", "DPoP "+etok,
			ek.Proof(t, guardtest.Proof{Method: "GET", URL: publicURL + "/resource", Token: etok, IAT: s.as.Now()})))
	})
	t.Run("BoundTokenAsBearer", func(t *testing.T) {
		wantDPoP(t, s.do(t, "GET", "/resource", "Bearer "+tok), CodeInvalidToken)
		wantDPoP(t, s.do(t, "GET", "/resource", "Bearer "+tok, proof(guardtest.Proof{Token: tok})), CodeInvalidToken)
	})
	refused := []struct {
		name  string
		proof string
	}{
		{"OtherMethod", proof(guardtest.Proof{Method: "POST", Token: tok})},
		{"OtherURL", proof(guardtest.Proof{URL: publicURL + "/other", Token: tok})},
		{"ListenerURL", proof(guardtest.Proof{URL: s.srv.URL + "/resource", Token: tok})},
		{"StaleIat", proof(guardtest.Proof{Token: tok, IAT: now.Add(-61 * time.Second)})},
		{"FutureIat", proof(guardtest.Proof{Token: tok, IAT: now.Add(10 * time.Second)})},
		{"NoAth", proof(guardtest.Proof{})},
		{"WrongAth", proof(guardtest.Proof{Token: bearer})},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			wantDPoP(t, s.do(t, "GET", "/resource", "DPoP "+tok, tc.proof), CodeInvalidProof)
		})
	}
	t.Run("NoProof", func(t *testing.T) {
		wantDPoP(t, s.do(t, "GET", "/resource", "DPoP "+tok), CodeInvalidProof)
	})
	t.Run("TwoProofs", func(t *testing.T) {
		wantDPoP(t, s.do(t, "GET", "/resource", "DPoP "+tok, proof(guardtest.Proof{Token: tok}), proof(guardtest.Proof{Token: tok})),
			CodeInvalidProof)
	})
	t.Run("OtherKey", func(t *testing.T) {
		other := guardtest.NewDPoPKey(t, tokens.ES256)
		p := other.Proof(t, guardtest.Proof{Method: "GET", URL: publicURL + "/resource", Token: tok, IAT: now})
		wantDPoP(t, s.do(t, "GET", "/resource", "DPoP "+tok, p), CodeInvalidToken)
	})
	t.Run("ReplayedJTI", func(t *testing.T) {
		p := proof(guardtest.Proof{Token: tok})
		wantOK(t, s.do(t, "GET", "/resource", "DPoP "+tok, p))
		wantDPoP(t, s.do(t, "GET", "/resource", "DPoP "+tok, p), CodeInvalidProof)
	})
	t.Run("BearerTokenWithDPoPScheme", func(t *testing.T) {
		res := s.do(t, "GET", "/resource", "DPoP "+bearer, proof(guardtest.Proof{Token: bearer}))
		wantDPoP(t, res, CodeInvalidToken)
		if ch := res.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error_description="the access token is not DPoP-bound`) {
			t.Fatalf("WWW-Authenticate %q: want it to say the token is not DPoP-bound", ch)
		}
	})
	t.Run("RequiredRoute", func(t *testing.T) {
		wantOK(t, s.do(t, "GET", "/resource", "Bearer "+bearer))
		wantDPoP(t, s.do(t, "GET", "/dpop-only", "Bearer "+bearer), CodeInvalidToken)
		wantOK(t, s.do(t, "GET", "/dpop-only", "DPoP "+tok, proof(guardtest.Proof{URL: publicURL + "/dpop-only", Token: tok})))
		// no credentials: the DPoP challenge only
		res := s.do(t, "GET", "/dpop-only", "")
		if ch := res.Header.Values("WWW-Authenticate"); len(ch) != 1 || ch[0] != `DPoP realm="stepup", algs="ES256 EdDSA"` {
			t.Fatalf("WWW-Authenticate %q, want the DPoP challenge alone", ch)
		}
	})
	t.Run("NoCredentialsBothChallenges", func(t *testing.T) {
		res := s.do(t, "GET", "/resource", "")
		ch := res.Header.Values("WWW-Authenticate")
		if res.StatusCode != 401 || len(ch) != 2 || ch[0] != `Bearer realm="stepup"` || ch[1] != `DPoP realm="stepup", algs="ES256 EdDSA"` {
			t.Fatalf("status %d, WWW-Authenticate %q; want the Bearer and DPoP challenges", res.StatusCode, ch)
		}
	})
	t.Run("StepUpChallenge", func(t *testing.T) {
		p := proof(guardtest.Proof{URL: publicURL + "/stepup", Token: tok})
		res := s.do(t, "GET", "/stepup", "DPoP "+tok, p)
		want := `DPoP realm="stepup", algs="ES256 EdDSA", error="insufficient_user_authentication", ` +
			`error_description="authentication level aal2 or higher is required", acr_values="aal2", max_age="300"`
		if ch := res.Header.Values("WWW-Authenticate"); res.StatusCode != 401 || len(ch) != 1 || ch[0] != want {
			t.Fatalf("status %d, WWW-Authenticate %q; want %q", res.StatusCode, ch, want)
		}
		// a bound token sent as Bearer gets the DPoP challenge, not a step-up
		wantDPoP(t, s.do(t, "GET", "/stepup", "Bearer "+tok), CodeInvalidToken)
		high := s.as.BoundToken(t, k, "aal2", []string{"pwd", "otp", "mfa"}, now)
		wantOK(t, s.do(t, "GET", "/stepup", "DPoP "+high, proof(guardtest.Proof{URL: publicURL + "/stepup", Token: high})))
	})
	t.Run("Stacked", func(t *testing.T) {
		wantOK(t, s.do(t, "GET", "/stacked", "DPoP "+tok, proof(guardtest.Proof{URL: publicURL + "/stacked", Token: tok})))
	})
}

// TestDPoPOff: without Config.URL a Guard accepts no DPoP, and refuses a
// DPoP-bound token in either scheme.
func TestDPoPOff(t *testing.T) {
	s := newDPoPServer(t, func(c *Config) { c.URL = "" })
	k := guardtest.NewDPoPKey(t, tokens.ES256)
	tok := s.as.BoundToken(t, k, "aal1", []string{"pwd"}, s.as.Now())
	p := k.Proof(t, guardtest.Proof{Method: "GET", URL: publicURL + "/resource", Token: tok, IAT: s.as.Now()})
	wantDPoP(t, s.do(t, "GET", "/resource", "DPoP "+tok, p), CodeInvalidToken)
	wantDPoP(t, s.do(t, "GET", "/resource", "Bearer "+tok), CodeInvalidToken)
	res := s.do(t, "GET", "/resource", "")
	if ch := res.Header.Values("WWW-Authenticate"); len(ch) != 1 || ch[0] != `Bearer realm="stepup"` {
		t.Fatalf("WWW-Authenticate %q without DPoP, want the Bearer challenge alone", ch)
	}
	if err := s.g.Validate(Requirement{DPoP: true}); err == nil {
		t.Fatal("a DPoP requirement without Config.URL validated")
	}
}

// TestDPoPReplayCacheBound: the replay cache holds at most its size; full
// of live entries, it refuses new proofs (never forgets a live one), and
// takes them again once entries expire.
func TestDPoPReplayCacheBound(t *testing.T) {
	s := newDPoPServer(t, func(c *Config) { c.ReplayCacheSize = 2 })
	k := guardtest.NewDPoPKey(t, tokens.ES256)
	tok := s.as.BoundToken(t, k, "aal1", []string{"pwd"}, s.as.Now())
	proof := func() string {
		return k.Proof(t, guardtest.Proof{Method: "GET", URL: publicURL + "/resource", Token: tok, IAT: s.as.Now()})
	}
	first := proof()
	wantOK(t, s.do(t, "GET", "/resource", "DPoP "+tok, first))
	wantOK(t, s.do(t, "GET", "/resource", "DPoP "+tok, proof()))
	wantDPoP(t, s.do(t, "GET", "/resource", "DPoP "+tok, proof()), CodeInvalidProof)
	wantDPoP(t, s.do(t, "GET", "/resource", "DPoP "+tok, first), CodeInvalidProof)
	s.as.Advance(66 * time.Second) // past every proof's lifetime (60 s + 5 s leeway)
	tok = s.as.BoundToken(t, k, "aal1", []string{"pwd"}, s.as.Now())
	wantOK(t, s.do(t, "GET", "/resource", "DPoP "+tok, proof()))
}
