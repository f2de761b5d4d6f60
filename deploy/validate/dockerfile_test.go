package validate

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

var (
	goBuildTags = regexp.MustCompile(`-tags[= ]+["']?([\w,.-]+)`)
	goDirective = regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`)
	golangImage = regexp.MustCompile(`^(?:docker\.io/(?:library/)?)?golang:(\d+)\.(\d+)`)
)

// checkDockerfile parses the Dockerfile with BuildKit's parser and
// instruction parser (what `docker build` runs first, including the lint
// rules that run at parse time) and asserts the production image's shape.
// rootGoMod is the repository's go.mod, whose go version the build image
// must satisfy.
func checkDockerfile(src, rootGoMod []byte) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return []error{fmt.Errorf("parse: %w", err)}
	}
	for _, w := range res.Warnings {
		bad("parser warning: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		bad("lint %s (line %d): %s", rule, line, msg)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return append(errs, fmt.Errorf("instructions: %w", err))
	}
	if len(stages) < 2 {
		return append(errs, fmt.Errorf("want a multi-stage build, got %d stage(s)", len(stages)))
	}

	// Build stages: a golang image new enough for go.mod, and a static,
	// noembed go build.
	var goBuild bool
	for _, st := range stages[:len(stages)-1] {
		cgoOff := false
		if m := golangImage.FindStringSubmatch(st.BaseName); m != nil {
			if g := goDirective.FindSubmatch(rootGoMod); g != nil {
				if versionLess(m[1], m[2], string(g[1]), string(g[2])) {
					bad("stage %s: %s is older than go.mod's go %s.%s", st.Name, st.BaseName, g[1], g[2])
				}
			}
		}
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					if kv.Key == "CGO_ENABLED" {
						cgoOff = kv.Value == "0"
					}
				}
			case *instructions.RunCommand:
				line := strings.Join(c.CmdLine, " ")
				if !strings.Contains(line, "go build") {
					continue
				}
				goBuild = true
				if !cgoOff && !regexp.MustCompile(`(^|\s)CGO_ENABLED=0\s`).MatchString(line) {
					bad("stage %s: go build without CGO_ENABLED=0 (the distroless/static image has no libc): %s", st.Name, line)
				}
				tags := goBuildTags.FindStringSubmatch(line)
				if tags == nil || !slices.Contains(strings.Split(tags[1], ","), "noembed") {
					bad("stage %s: go build without -tags noembed (the production image must not carry the embedded store): %s", st.Name, line)
				}
			}
		}
	}
	if !goBuild {
		bad("no build stage runs go build")
	}

	// Final stage: distroless/static or scratch, no shell needed, non-root,
	// a HEALTHCHECK.
	final := stages[len(stages)-1]
	if final.BaseName != "scratch" && !strings.Contains(final.BaseName, "distroless/static") {
		bad("final stage FROM %s, want a distroless/static (or scratch) base", final.BaseName)
	}
	var (
		user, addr      string
		adminAddr       string
		health          *instructions.HealthCheckCommand
		entrypoint      []string
		exposed, copied []string
	)
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.RunCommand:
			bad("final stage: RUN %q needs a shell, which a distroless/scratch image lacks", strings.Join(c.CmdLine, " "))
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.EntrypointCommand:
			if c.PrependShell {
				bad("final stage: shell-form ENTRYPOINT needs /bin/sh; use the exec form")
			}
			entrypoint = c.CmdLine
		case *instructions.CmdCommand:
			if c.PrependShell {
				bad("final stage: shell-form CMD needs /bin/sh; use the exec form")
			}
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				switch kv.Key {
				case "STEPUP_ADDR":
					addr = kv.Value
				case "STEPUP_ADMIN_ADDR":
					adminAddr = kv.Value
				}
			}
		case *instructions.CopyCommand:
			if c.From != "" && !slices.ContainsFunc(stages[:len(stages)-1], func(s instructions.Stage) bool { return strings.EqualFold(s.Name, c.From) }) {
				bad("final stage: COPY --from=%s names no earlier stage", c.From)
			}
			copied = append(copied, c.DestPath)
		}
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
		bad("final stage: USER %q, want an explicit non-root user", user)
	}
	switch {
	case health == nil:
		bad("final stage: no HEALTHCHECK")
	case health.Health == nil || len(health.Health.Test) < 2 || health.Health.Test[0] != "CMD":
		bad("final stage: HEALTHCHECK must be CMD in exec form (no shell), got %v", health.Health)
	}
	if len(entrypoint) == 0 {
		bad("final stage: no ENTRYPOINT")
	} else if !slices.Contains(copied, entrypoint[0]) {
		bad("final stage: ENTRYPOINT %s is not a file the stage COPYs in (%v)", entrypoint[0], copied)
	}
	port := ""
	if addr == "" {
		bad("final stage: no ENV STEPUP_ADDR; the binary's default is loopback, unreachable from outside the container")
	} else if p, err := listenPort("STEPUP_ADDR", addr); err != nil {
		bad("final stage: %v", err)
	} else if port = p; !slices.ContainsFunc(exposed, func(p string) bool { return strings.TrimSuffix(p, "/tcp") == port }) {
		bad("final stage: STEPUP_ADDR %q listens on a port not in EXPOSE %v", addr, exposed)
	}
	if adminAddr != "" && adminAddr != "off" {
		if p, err := listenPort("STEPUP_ADMIN_ADDR", adminAddr); err != nil {
			bad("final stage: %v", err)
		} else if p == port {
			bad("final stage: STEPUP_ADMIN_ADDR %q shares the public port %s", adminAddr, port)
		} else if slices.ContainsFunc(exposed, func(e string) bool { return strings.TrimSuffix(e, "/tcp") == p }) {
			bad("final stage: STEPUP_ADMIN_ADDR %q is EXPOSEd; /metrics is for operators, not the public (docker run -P would publish it)", adminAddr)
		}
	}
	return errs
}

// dockerfileUser is the USER of the Dockerfile's final stage.
func dockerfileUser(src []byte) (string, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return "", err
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil || len(stages) == 0 {
		return "", fmt.Errorf("no stages (%v)", err)
	}
	user := ""
	for _, c := range stages[len(stages)-1].Commands {
		if u, ok := c.(*instructions.UserCommand); ok {
			user = u.User
		}
	}
	return user, nil
}

func versionLess(aMajor, aMinor, bMajor, bMinor string) bool {
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	if n(aMajor) != n(bMajor) {
		return n(aMajor) < n(bMajor)
	}
	return n(aMinor) < n(bMinor)
}

func TestDockerfile(t *testing.T) {
	reportProblems(t, "deploy/Dockerfile", checkDockerfile(readRepoFile(t, "deploy", "Dockerfile"), readRepoFile(t, "go.mod")))
}

func TestDockerfileChecksCatchMistakes(t *testing.T) {
	src := string(readRepoFile(t, "deploy", "Dockerfile"))
	gomod := readRepoFile(t, "go.mod")
	for _, tc := range []struct{ name, old, new, want string }{
		{"embedded store", "-tags noembed ", "", "-tags noembed"},
		{"cgo", "CGO_ENABLED=0 ", "", "CGO_ENABLED=0"},
		{"root", "USER 65532:65532", "USER root", "non-root"},
		{"no user", "USER 65532:65532\n", "", "non-root"},
		{"base", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12-slim", "distroless/static"},
		{"no healthcheck", "HEALTHCHECK ", "# HEALTHCHECK ", "no HEALTHCHECK"},
		{"shell healthcheck", `CMD ["/stepup", "healthcheck"]`, "CMD /stepup healthcheck", "exec form"},
		{"shell entrypoint", `ENTRYPOINT ["/stepup"]`, "ENTRYPOINT /stepup", "shell-form ENTRYPOINT"},
		{"lint casing", " AS build", " as build", "FromAsCasing"},
		{"old go", "golang:1.26", "golang:1.21", "older than go.mod"},
		{"single stage", "FROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/stepup /stepup\n", "", "multi-stage"},
		{"syntax", "HEALTHCHECK --interval=10s", "HEALTHCHECK --intervall=10s", "instructions"},
		{"no addr", "ENV STEPUP_ADDR=:8080 ", "ENV ", "no ENV STEPUP_ADDR"},
		{"loopback addr", "STEPUP_ADDR=:8080", "STEPUP_ADDR=127.0.0.1:8080", "loopback"},
		{"admin on public port", "STEPUP_ADMIN_ADDR=:9090", "STEPUP_ADMIN_ADDR=:8080", "shares the public port"},
		{"admin exposed", "EXPOSE 8080", "EXPOSE 8080 9090", "is EXPOSEd"},
		{"admin loopback", "STEPUP_ADMIN_ADDR=:9090", "STEPUP_ADMIN_ADDR=127.0.0.1:9090", "loopback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(src, tc.old) {
				t.Fatalf("deploy/Dockerfile no longer contains %q; update this test", tc.old)
			}
			expectProblem(t, checkDockerfile([]byte(strings.Replace(src, tc.old, tc.new, 1)), gomod), tc.want)
		})
	}
}

// TestPodUserMatchesImage: the Deployment's runAsUser/runAsGroup, when set,
// must be the image's USER, or the pod runs as a user the image's files were
// not made for.
func TestPodUserMatchesImage(t *testing.T) {
	user, err := dockerfileUser(readRepoFile(t, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	uid, gid, _ := strings.Cut(user, ":")
	psc := loadK8s(t).Deployments[0].Spec.Template.Spec.SecurityContext
	if psc == nil {
		t.Fatal("Deployment has no pod securityContext")
	}
	if psc.RunAsUser != nil && strconv.FormatInt(*psc.RunAsUser, 10) != uid {
		t.Errorf("pod runAsUser %d, image USER %s", *psc.RunAsUser, user)
	}
	if psc.RunAsGroup != nil && gid != "" && strconv.FormatInt(*psc.RunAsGroup, 10) != gid {
		t.Errorf("pod runAsGroup %d, image USER %s", *psc.RunAsGroup, user)
	}
}
