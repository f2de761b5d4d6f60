package guard

import (
	"os/exec"
	"strings"
	"testing"
)

// The package other services import depends on the standard library,
// golang-jwt and package tokens only (STYLE.md). So does guardtest, which
// their tests import.
func TestDependencies(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	allowed := func(path string) bool {
		switch path {
		case "github.com/stepup-auth/stepup/tokens",
			"github.com/stepup-auth/stepup/tokens/guard",
			"github.com/stepup-auth/stepup/tokens/guard/guardtest":
			return true
		}
		return path == "github.com/golang-jwt/jwt/v5" || strings.HasPrefix(path, "github.com/golang-jwt/jwt/v5/")
	}
	for _, pkg := range []string{".", "./guardtest"} {
		out, err := exec.Command(gotool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 3 {
			t.Fatalf("go list %s listed %v; expected at least guard, tokens and golang-jwt", pkg, deps)
		}
		for _, dep := range deps {
			if !allowed(dep) {
				t.Errorf("%s depends on %s; only the standard library, golang-jwt and stepup/tokens are allowed", pkg, dep)
			}
		}
	}
}
