package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/store"
)

// The embedded store has no authentication, so nothing but the owner may
// reach it: it listens on a Unix socket in a 0700 folder, never on TCP, and
// its files are 0600.

// pvConfig is the configuration of an App with its own embedded store in
// dir: what LoadConfig gives with no environment but a data folder, with
// the harness's issuer and a port of the kernel's choice.
func pvConfig(dir string) Config {
	return Config{
		Addr:       "127.0.0.1:0",
		Issuer:     testIssuer,
		DataDir:    dir,
		Audiences:  []string{"stepup"},
		RPID:       "localhost",
		RPOrigins:  []string{testIssuer},
		SignupOpen: true,
		SigningAlg: "ES256",
		AccessTTL:  15 * time.Minute,
		LogLevel:   "error",
	}
}

// pvOpen opens an App with cfg on clk. On success it waits until the App is
// ready and closes it when tb ends; an App opened later closes earlier.
func pvOpen(tb testing.TB, cfg Config, clk *clock) (*testApp, error) {
	tb.Helper()
	app := &App{Config: cfg, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelError}))}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Open(ctx); err != nil {
		return nil, err
	}
	ta := &testApp{App: app, Clock: clk, base: "http://" + app.Addr(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ta.client.CloseIdleConnections()
		if err := app.Close(ctx); err != nil {
			tb.Errorf("close app: %v", err)
		}
	})
	ta.waitReady(tb)
	return ta, nil
}

// tcpListener is a listening TCP socket of this process.
type tcpListener struct {
	Family string // tcp or tcp6
	Addr   string // host:port
	Port   int
}

// pvTCPListeners lists the listening TCP sockets this process holds: the
// LISTEN (0A) rows of /proc/self/net/tcp and tcp6 whose inode is one of
// the process's socket file descriptors.
func pvTCPListeners(tb testing.TB) []tcpListener {
	tb.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Skipf("no /proc/self/fd: %v", err)
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(link, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	if len(mine) == 0 {
		tb.Fatal("no socket among this process's file descriptors; the API listener at least should be one")
	}
	var out []tcpListener
	for _, family := range []string{"tcp", "tcp6"} {
		f, err := os.Open("/proc/self/net/" + family)
		if err != nil {
			if family == "tcp6" && os.IsNotExist(err) {
				continue // no IPv6 in this kernel
			}
			tb.Fatalf("read /proc/self/net/%s: %v", family, err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !mine[fields[9]] {
				continue
			}
			host, port := pvDecodeAddr(tb, fields[1])
			out = append(out, tcpListener{Family: family, Addr: net.JoinHostPort(host, strconv.Itoa(port)), Port: port})
		}
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
		f.Close()
	}
	return out
}

// pvDecodeAddr decodes a /proc/net/tcp{,6} address: the IP in hex as
// 32-bit words in host (little-endian) order, a colon, the port in hex.
func pvDecodeAddr(tb testing.TB, s string) (string, int) {
	tb.Helper()
	ipHex, portHex, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(ipHex)
	port, perr := strconv.ParseUint(portHex, 16, 16)
	if !ok || err != nil || perr != nil || (len(raw) != 4 && len(raw) != 16) {
		tb.Fatalf("unreadable /proc/net/tcp address %q", s)
	}
	ip := make(net.IP, len(raw))
	for w := 0; w < len(raw); w += 4 {
		for i := range 4 {
			ip[w+i] = raw[w+3-i]
		}
	}
	return ip.String(), int(port)
}

// TestNoTCPListenerButAPI: the only TCP sockets listening in this process
// are the API listeners of the Apps the test started — one on the shared
// test store (the storetest embedded server), one with its own embedded
// store. Neither embedded server listens on TCP.
func TestNoTCPListenerButAPI(t *testing.T) {
	shared := startApp(t, appOptions{})
	own, err := pvOpen(t, pvConfig(t.TempDir()), newClock())
	if err != nil {
		t.Fatalf("open an App with its own embedded store: %v", err)
	}
	want := map[string]bool{shared.Addr(): true, own.Addr(): true}
	seen := map[string]bool{}
	for _, l := range pvTCPListeners(t) {
		if l.Family == "tcp" && want[l.Addr] {
			seen[l.Addr] = true
			continue
		}
		t.Errorf("listening TCP socket %s (%s) is not an API listener of the test's Apps (%s, %s)",
			l.Addr, l.Family, shared.Addr(), own.Addr())
	}
	for addr := range want {
		if !seen[addr] {
			t.Errorf("the API listener %s is not among this process's listening sockets: the check sees nothing", addr)
		}
	}
}

// TestDataFolderPrivate: an App with its own embedded store keeps it in a
// 0700 folder, with the socket and every file 0600; a second App cannot
// start on the folder while the first serves it, and says how to share it;
// an App given the socket's URI and the folder's master key shares it.
func TestDataFolderPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by the App
	clk := newClock()
	first, err := pvOpen(t, pvConfig(dir), clk)
	if err != nil {
		t.Fatalf("open the first App: %v", err)
	}
	const username = "private-alice"
	_, secret, _ := suEnroll(t, first, username) // sign-up, session, TOTP factor: the store has written

	t.Run("Modes", func(t *testing.T) {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o700 {
			t.Errorf("data folder mode %04o, want 0700", m)
		}
		sock := filepath.Join(dir, store.SocketName)
		fi, err = os.Lstat(sock)
		if err != nil {
			t.Fatalf("socket: %v", err)
		}
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want a socket with mode 0600", store.SocketName, fi.Mode())
		}
		var files []string
		err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			switch {
			case d.IsDir():
				if m := info.Mode().Perm(); m != 0o700 {
					t.Errorf("folder %s: mode %04o, want 0700", rel, m)
				}
			case info.Mode().IsRegular():
				files = append(files, rel)
				if m := info.Mode().Perm(); m != 0o600 {
					t.Errorf("file %s: mode %04o, want 0600", rel, m)
				}
			case info.Mode()&os.ModeSocket != 0:
				if m := info.Mode().Perm(); m != 0o600 {
					t.Errorf("socket %s: mode %04o, want 0600", rel, m)
				}
			default:
				t.Errorf("%s: unexpected file type %v", rel, info.Mode())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("files: %v", files)
		sqlite := false
		for _, f := range files {
			sqlite = sqlite || strings.HasSuffix(f, ".sqlite")
		}
		if !sqlite || !slices.Contains(files, "master.key") {
			t.Errorf("files %v: want master.key and the SQLite database", files)
		}
	})

	t.Run("SecondOwnerRefused", func(t *testing.T) {
		_, err := pvOpen(t, pvConfig(dir), clk)
		uri := store.SocketURI(filepath.Join(dir, store.SocketName))
		if err == nil || !strings.Contains(err.Error(), uri) {
			t.Fatalf("second App on the same data folder: error %v; want a refusal naming the live socket %s", err, uri)
		}
		t.Logf("refused: %v", err)
		if r := first.get(t, "/readyz", ""); r.Status != http.StatusOK {
			t.Errorf("the first App after the refused start: /readyz %d, want 200", r.Status)
		}
	})

	t.Run("Shared", func(t *testing.T) {
		key, created, err := masterKeyFile(dir)
		if err != nil || created {
			t.Fatalf("master key of the data folder: created %v, err %v; want the first App's", created, err)
		}
		cfg := pvConfig(t.TempDir()) // its own data folder stays unused
		cfg.MongoURI = store.SocketURI(filepath.Join(dir, store.SocketName))
		cfg.MasterKey = key
		second, err := pvOpen(t, cfg, clk)
		if err != nil {
			t.Fatalf("open an App on the first one's socket: %v", err)
		}
		pw := "pw-" + username + "-correct horse" // suEnroll's
		var l loginResult
		second.verify(t, second.mfaToken(t, username, pw), totpCode(secret, clk.step())).decode(t, http.StatusOK, &l)
		if l.ACR != "aal2" {
			t.Errorf("sign-in through the second App: acr %q, want aal2", l.ACR)
		}
		var me meResult
		first.get(t, "/v1/me", l.AccessToken).decode(t, http.StatusOK, &me)
		if me.Username != username {
			t.Errorf("the second App's token on the first: user %q, want %q", me.Username, username)
		}
		if entries, err := os.ReadDir(cfg.DataDir); err != nil || len(entries) != 0 {
			t.Errorf("the sharing App wrote to its own data folder: %d entries, err %v", len(entries), err)
		}
	})
}
