package validate

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the repository root: this module lives in deploy/validate.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "stepup", "config.go")); err != nil {
		t.Fatalf("repository root not found from the test directory: %v", err)
	}
	return root
}

func readRepoFile(t testing.TB, rel ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{repoRoot(t)}, rel...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// knownSettings is the set of STEPUP_* names in cmd/stepup/config.go.
func knownSettings(t testing.TB) map[string]bool {
	t.Helper()
	names, err := ParseSettings(readRepoFile(t, "cmd", "stepup", "config.go"))
	if err != nil {
		t.Fatalf("cmd/stepup/config.go: %v", err)
	}
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[n] = true
	}
	return known
}

// expectProblem fails unless one of errs contains want.
func expectProblem(t *testing.T, errs []error, want string) {
	t.Helper()
	for _, err := range errs {
		if strings.Contains(err.Error(), want) {
			return
		}
	}
	t.Errorf("no problem mentioning %q; got %v", want, errs)
}

// reportProblems fails the test once per problem.
func reportProblems(t *testing.T, what string, errs []error) {
	t.Helper()
	for _, err := range errs {
		t.Errorf("%s: %v", what, err)
	}
}

// listenPort checks a STEPUP_ADDR or STEPUP_ADMIN_ADDR value a container
// sets: host:port, on every interface or a routable address, since the
// binary's default is loopback, which nothing outside the container reaches.
// It returns the port.
func listenPort(name, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: %v", name, addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return "", fmt.Errorf("%s %q listens on loopback only: unreachable from outside the container; use :%s", name, addr, port)
	}
	return port, nil
}
