package uitest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The service under test: the real binary, built once per run from the
// repository root and started as a separate process per test.

var (
	binDir    string // holds the built binary; removed after the run
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "uitest-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the repository root: this module lives in api/uitest.
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(mod, []byte("module github.com/stepup-auth/stepup\n")) {
		return "", fmt.Errorf("the service's go.mod is not at %s (err %v)", root, err)
	}
	return root, nil
}

// stepupBinary builds cmd/stepup once per test run and returns its path.
func stepupBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		start := time.Now()
		out := filepath.Join(binDir, "stepup")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/stepup")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/stepup in %s: %v\n%s", root, err, b)
			return
		}
		binPath = out
		t.Logf("built cmd/stepup in %v", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// service is one running stepup process, reachable at Origin:
// http://localhost:PORT. localhost is a secure context, so WebAuthn works
// over HTTP, and the issuer, the RP origin and the RP ID all name it.
type service struct {
	Origin string
	bin    string
	env    []string      // the process's environment: also what `stepup admin` needs
	log    *syncBuffer   // its stderr: JSON logs at debug level
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

// startService starts the binary on a free port picked ahead (the WebAuthn
// origin must be known before it starts) with a fresh data folder, plus the
// STEPUP_* settings in extra ("NAME=value"), and waits for /readyz.
func startService(t *testing.T, extra ...string) *service {
	t.Helper()
	bin := stepupBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	// A short path: the embedded store listens on a Unix socket in it
	// (about 100 bytes at most).
	data, err := os.MkdirTemp("", "ui")
	if err != nil {
		t.Fatal(err)
	}
	s := &service{Origin: "http://localhost:" + port, bin: bin, log: &syncBuffer{}, exited: make(chan struct{})}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STEPUP_") {
			s.env = append(s.env, kv)
		}
	}
	s.env = append(s.env,
		"STEPUP_ADDR=127.0.0.1:"+port,
		"STEPUP_ADMIN_ADDR=off", // tests run in parallel; /metrics is not theirs
		"STEPUP_ISSUER="+s.Origin,
		"STEPUP_DATA_DIR="+data,
		"STEPUP_RP_ID=localhost",
		"STEPUP_RP_ORIGINS="+s.Origin,
		"STEPUP_AUDIENCES=stepup",
		"STEPUP_SIGNUP=open",
		"STEPUP_SIGNING_ALG=ES256",
		"STEPUP_LOG_LEVEL=debug",
	)
	s.env = append(s.env, extra...)
	cmd := exec.Command(bin, "serve")
	cmd.Env = s.env
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		os.RemoveAll(data)
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // drains requests, then stops the store
		select {
		case <-s.exited:
			if s.err != nil {
				t.Errorf("stepup exited with %v after SIGINT", s.err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-s.exited
			t.Errorf("stepup still running 30 s after SIGINT: killed")
		}
		if t.Failed() {
			t.Logf("stepup log (last 60 lines):\n%s", tail(s.log.String(), 60))
		}
		if err := os.RemoveAll(data); err != nil {
			t.Errorf("remove the data folder: %v", err)
		}
	})
	s.waitReady(t, "http://127.0.0.1:"+port+"/readyz")
	return s
}

// waitReady polls url until it answers 200; the process exiting first fails
// at once.
func (s *service) waitReady(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := client.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			err = errors.New(res.Status)
		}
		select {
		case <-s.exited:
			t.Fatalf("stepup exited before it was ready (%v):\n%s", s.err, tail(s.log.String(), 60))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60 s: %v\n%s", url, err, tail(s.log.String(), 60))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// admin runs `stepup admin ARGS...` as an operator would, with the
// service's settings: it reaches the running embedded store on its socket.
func (s *service) admin(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, append([]string{"admin"}, args...)...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("stepup admin %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
