package main

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/store/storetest"
)

// The operations listener: /metrics on STEPUP_ADMIN_ADDR, never on the
// public one; secrets never from flags; loopback by default.

// startAdminApp is startApp with an operations listener on 127.0.0.1:0.
func startAdminApp(tb testing.TB) *testApp {
	tb.Helper()
	clk := newClock()
	app := &App{
		Config: Config{
			Addr:       "127.0.0.1:0",
			AdminAddr:  "127.0.0.1:0",
			Issuer:     testIssuer,
			MongoURI:   storetest.URI(tb),
			Database:   newDatabase(),
			MasterKey:  storetest.MasterKey,
			Audiences:  []string{"stepup"},
			RPID:       "localhost",
			RPOrigins:  []string{testIssuer},
			SignupOpen: true,
			SigningAlg: "ES256",
			AccessTTL:  15 * time.Minute,
			LogLevel:   "error",
		},
		Logger: quietLogger(tb),
		Now:    clk.Now,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Open(ctx); err != nil {
		tb.Fatalf("open app: %v", err)
	}
	ta := &testApp{App: app, Clock: clk, base: "http://" + app.Addr(),
		client: &http.Client{Timeout: 30 * time.Second}}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ta.client.CloseIdleConnections()
		if app.DB() != nil {
			_ = app.DB().Drop(ctx)
		}
		if err := app.Close(ctx); err != nil {
			tb.Errorf("close app: %v", err)
		}
	})
	ta.waitReady(tb)
	return ta
}

// adminGet sends GET path to the App's operations listener.
func (a *testApp) adminGet(tb testing.TB, path string) response {
	tb.Helper()
	if a.AdminAddr() == "" {
		tb.Fatal("the App has no operations listener")
	}
	res, err := a.client.Get("http://" + a.AdminAddr() + path)
	if err != nil {
		tb.Fatalf("GET %s on the operations listener: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: body}
}

// quietLogger logs errors only, to the test log.
func quietLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelError}))
}

func TestMetricsOnlyOnAdminListener(t *testing.T) {
	// Registered first, so it runs after the App's Close: that stops both
	// listeners.
	var admin string
	t.Cleanup(func() {
		if c, err := net.DialTimeout("tcp", admin, time.Second); err == nil {
			c.Close()
			t.Errorf("the operations listener %s still accepts connections after Close", admin)
		}
	})
	a := startAdminApp(t)
	admin = a.AdminAddr()
	if a.AdminAddr() == a.Addr() {
		t.Fatalf("one address for both listeners: %s", a.Addr())
	}

	a.get(t, "/healthz", "") // one request, so the request histogram has a sample
	a.get(t, "/metrics", "").wantProblem(t, http.StatusNotFound, "not_found")

	r := a.adminGet(t, "/metrics")
	if r.Status != http.StatusOK {
		t.Fatalf("admin /metrics: %d %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("admin /metrics Content-Type = %q, want Prometheus text", ct)
	}
	for _, want := range []string{"# TYPE go_goroutines gauge", "stepup_http_request_duration_seconds_count{", `route="/healthz"`} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("admin /metrics lacks %q", want)
		}
	}
	// The operations listener serves nothing of the public API.
	for _, p := range []string{"/healthz", "/.well-known/jwks.json", "/v1/me"} {
		if r := a.adminGet(t, p); r.Status != http.StatusNotFound {
			t.Errorf("admin %s: %d, want 404", p, r.Status)
		}
	}
}

func TestAdminAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sc := storetest.Config(t)
	storetest.Open(t, sc) // drops the database at the end
	cfg := pvConfig(t.TempDir())
	cfg.MongoURI, cfg.Database, cfg.MasterKey = sc.URI, sc.Database, sc.MasterKey
	cfg.AdminAddr = ln.Addr().String()
	app := &App{Config: cfg, Logger: quietLogger(t)}
	err = app.Open(context.Background())
	if err == nil {
		app.Close(context.Background())
		t.Fatal("Open succeeded on an operations address in use")
	}
	if !strings.HasPrefix(err.Error(), "STEPUP_ADMIN_ADDR: ") {
		t.Errorf("error %q does not name STEPUP_ADMIN_ADDR", err)
	}
}

// env is a getenv over a map.
func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestMasterKeyFlagRefused(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, args := range [][]string{
		{"-master-key", key},
		{"-master-key=" + key},
		{"--master-key", key},
		{"-signup", "closed", "-master-key=" + key},
	} {
		_, err := LoadConfig(args, env(nil))
		if err == nil {
			t.Errorf("%q: accepted", args)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "-master-key") || !strings.Contains(msg, "never as a flag") ||
			!strings.Contains(msg, "STEPUP_MASTER_KEY_FILE") || strings.Contains(msg, "\n") || strings.Contains(msg, key) {
			t.Errorf("%q: error %q, want one line naming -master-key and the two ways, without the key", args, msg)
		}
	}
	// The environment still works.
	c, err := LoadConfig(nil, env(map[string]string{"STEPUP_MASTER_KEY": key}))
	if err != nil || len(c.MasterKey) != 32 {
		t.Errorf("STEPUP_MASTER_KEY: %v, %d-byte key", err, len(c.MasterKey))
	}
}

func TestMasterKeyFile(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	key := base64.StdEncoding.EncodeToString(raw)
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // whatever the umask
		t.Fatal(err)
	}

	c, err := LoadConfig(nil, env(map[string]string{"STEPUP_MASTER_KEY_FILE": path,
		"STEPUP_MONGODB_URI": "mongodb://localhost:27017/stepup"}))
	if err != nil {
		t.Fatalf("0600 key file: %v", err)
	}
	if string(c.MasterKey) != string(raw) {
		t.Errorf("master key from the file = %x, want %x", c.MasterKey, raw)
	}
	if c, err := LoadConfig([]string{"-master-key-file", path}, env(nil)); err != nil || string(c.MasterKey) != string(raw) {
		t.Errorf("-master-key-file (a path, not a secret): %v", err)
	}

	both := map[string]string{"STEPUP_MASTER_KEY_FILE": path, "STEPUP_MASTER_KEY": key}
	if _, err := LoadConfig(nil, env(both)); err == nil || !strings.Contains(err.Error(), "set one of the two") {
		t.Errorf("key given both ways: %v", err)
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(nil, env(map[string]string{"STEPUP_MASTER_KEY_FILE": path}))
		if err == nil || !strings.HasPrefix(err.Error(), "STEPUP_MASTER_KEY_FILE: ") || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: %v, want a refusal naming STEPUP_MASTER_KEY_FILE", mode, err)
		}
	}

	if _, err := LoadConfig(nil, env(map[string]string{"STEPUP_MASTER_KEY_FILE": path + ".missing"})); err == nil ||
		!strings.HasPrefix(err.Error(), "STEPUP_MASTER_KEY_FILE: ") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("not base64!"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(nil, env(map[string]string{"STEPUP_MASTER_KEY_FILE": bad})); err == nil ||
		!strings.HasPrefix(err.Error(), "STEPUP_MASTER_KEY_FILE: ") || strings.Contains(err.Error(), "not base64!") {
		t.Errorf("bad key file: %v", err)
	}
}

func TestListenDefaultsLoopback(t *testing.T) {
	c, err := LoadConfig(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for name, addr := range map[string]string{"STEPUP_ADDR": c.Addr, "STEPUP_ADMIN_ADDR": c.AdminAddr} {
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			t.Errorf("default %s = %q, want a loopback address", name, addr)
		}
	}
	if c.Addr != "127.0.0.1:8080" || c.AdminAddr != "127.0.0.1:9090" {
		t.Errorf("defaults %q and %q, want 127.0.0.1:8080 and 127.0.0.1:9090", c.Addr, c.AdminAddr)
	}

	c, err = LoadConfig([]string{"-addr", ":8080"}, env(map[string]string{"STEPUP_ADMIN_ADDR": "off"}))
	if err != nil || c.Addr != ":8080" || c.AdminAddr != "" {
		t.Errorf("explicit :8080 and admin off: %+v, %v", c.Addr, err)
	}
	for _, admin := range []string{"127.0.0.1:8080", "9090", "localhost"} {
		if _, err := LoadConfig([]string{"-admin-addr", admin}, env(nil)); err == nil || !strings.HasPrefix(err.Error(), "STEPUP_ADMIN_ADDR: ") {
			t.Errorf("admin address %q: %v, want an error naming STEPUP_ADMIN_ADDR", admin, err)
		}
	}
}
