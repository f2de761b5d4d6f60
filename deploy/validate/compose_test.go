package validate

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// dummyMasterKey is base64 of 32 zero bytes: valid for STEPUP_MASTER_KEY.
const dummyMasterKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

// loadCompose loads deploy/compose/compose.yaml as `docker compose -f
// deploy/compose/compose.yaml config` does: the project directory is the
// file's folder, the compose JSON schema is enforced, variables are
// interpolated from env only (never from this process's environment), YAML
// anchors and merges are resolved and relative paths made absolute.
func loadCompose(t testing.TB, env map[string]string) (*types.Project, error) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "deploy", "compose")
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "compose.yaml")}},
		Environment: types.Mapping(env),
	}, func(o *loader.Options) { o.ResolvePaths = true })
}

var (
	stepupService = regexp.MustCompile(`^stepup\d+$`)
	mongoService  = regexp.MustCompile(`^mongo\d+$`)
)

// checkCompose asserts the three-replica topology on a MongoDB replica set.
func checkCompose(p *types.Project, repo string, known map[string]bool) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	var stepups, mongos []string
	for name := range p.Services {
		switch {
		case stepupService.MatchString(name):
			stepups = append(stepups, name)
		case mongoService.MatchString(name):
			mongos = append(mongos, name)
		}
	}
	sort.Strings(stepups)
	sort.Strings(mongos)
	if len(stepups) != 3 {
		bad("want three stepup services (stepup1..3), got %v", stepups)
	}
	if len(mongos) != 3 {
		bad("want three mongo services (mongo1..3), got %v", mongos)
	}
	if len(stepups) == 0 {
		return errs
	}

	// MongoDB replica set members.
	replSets := map[string]bool{}
	for _, name := range mongos {
		s := p.Services[name]
		if !strings.HasPrefix(s.Image, "mongo:") {
			bad("%s: image %q, want mongo:<version>", name, s.Image)
		}
		cmd := []string(s.Command)
		i := slices.Index(cmd, "--replSet")
		if len(cmd) == 0 || cmd[0] != "mongod" || i < 0 || i+1 >= len(cmd) {
			bad("%s: command %q must run mongod --replSet <name>", name, cmd)
			continue
		}
		replSets[cmd[i+1]] = true
		if !slices.Contains(cmd, "--bind_ip_all") {
			bad("%s: mongod without --bind_ip_all only listens on localhost", name)
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 || s.HealthCheck.Disable {
			bad("%s: no healthcheck (mongo-init waits for service_healthy)", name)
		}
		if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == "/data/db" }) {
			bad("%s: /data/db is not on a volume", name)
		}
	}
	if len(replSets) != 1 || !replSets["rs0"] {
		bad("mongo services must all run --replSet rs0, got %v", replSets)
	}

	// The init job initiates the replica set with every member.
	if s, ok := p.Services["mongo-init"]; !ok {
		bad("no mongo-init service")
	} else {
		if s.Restart != "no" {
			bad("mongo-init: restart %q, want \"no\" (a one-shot job)", s.Restart)
		}
		script := strings.Join(s.Command, " ")
		if !strings.Contains(script, "rs.initiate(") || !regexp.MustCompile(`_id:\s*"rs0"`).MatchString(script) {
			bad("mongo-init: command does not rs.initiate the replica set rs0: %q", script)
		}
		for _, m := range mongos {
			if !strings.Contains(script, `"`+m+`:27017"`) {
				bad("mongo-init: rs.initiate does not list member %s:27017", m)
			}
			if dep, ok := s.DependsOn[m]; !ok || dep.Condition != types.ServiceConditionHealthy {
				bad("mongo-init: must depend on %s being service_healthy", m)
			}
		}
	}

	// Three identical stepup services.
	first := p.Services[stepups[0]]
	for _, name := range stepups {
		s := p.Services[name]
		if s.Build == nil {
			bad("%s: no build", name)
			continue
		}
		if s.Build.Context != repo {
			bad("%s: build context %q, want the repository root %q", name, s.Build.Context, repo)
		}
		if s.Build.Dockerfile != "deploy/Dockerfile" {
			bad("%s: dockerfile %q, want deploy/Dockerfile", name, s.Build.Dockerfile)
		} else if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
			bad("%s: %v", name, err)
		}
		for _, f := range []struct {
			what      string
			got, want any
		}{
			{"build", s.Build, first.Build},
			{"environment", s.Environment, first.Environment},
			{"image", s.Image, first.Image},
			{"depends_on", s.DependsOn, first.DependsOn},
			{"read_only", s.ReadOnly, first.ReadOnly},
			{"cap_drop", s.CapDrop, first.CapDrop},
			{"security_opt", s.SecurityOpt, first.SecurityOpt},
		} {
			if !reflect.DeepEqual(f.got, f.want) {
				bad("%s: %s differs from %s's: %v vs %v", name, f.what, stepups[0], f.got, f.want)
			}
		}
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			bad("%s: want read_only, cap_drop [ALL] and no-new-privileges:true", name)
		}
		if dep, ok := s.DependsOn["mongo-init"]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
			bad("%s: must depend on mongo-init completing successfully", name)
		}
		if len(s.Ports) > 0 {
			bad("%s: publishes ports %v; only the load balancer should", name, s.Ports)
		}
	}
	for k, v := range first.Environment {
		if !known[k] {
			bad("%s: environment %s is not a setting of cmd/stepup/config.go", stepups[0], k)
		}
		if v == nil {
			bad("%s: environment %s has no value", stepups[0], k)
		}
	}
	get := func(k string) string {
		if v := first.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	// nginx reaches every replica on :8080; /metrics stays off that port.
	if addr := get("STEPUP_ADDR"); addr == "" {
		bad("%s: STEPUP_ADDR is not set; the binary's default is loopback, which nginx cannot reach", stepups[0])
	} else if port, err := listenPort("STEPUP_ADDR", addr); err != nil {
		bad("%s: %v", stepups[0], err)
	} else if port != "8080" {
		bad("%s: STEPUP_ADDR %q, but nginx proxies to port 8080", stepups[0], addr)
	}
	if admin := get("STEPUP_ADMIN_ADDR"); admin != "" && admin != "off" {
		if port, err := listenPort("STEPUP_ADMIN_ADDR", admin); err != nil {
			bad("%s: %v", stepups[0], err)
		} else if port == "8080" {
			bad("%s: STEPUP_ADMIN_ADDR %q is the public port, which nginx publishes", stepups[0], admin)
		}
	}
	if get("STEPUP_MASTER_KEY") != dummyMasterKey {
		bad("STEPUP_MASTER_KEY is not interpolated from the environment: %q", get("STEPUP_MASTER_KEY"))
	}
	hosts, opts, err := parseMongoURI(get("STEPUP_MONGODB_URI"))
	if err != nil {
		bad("STEPUP_MONGODB_URI: %v", err)
	} else {
		var want []string
		for _, m := range mongos {
			want = append(want, m+":27017")
		}
		sort.Strings(hosts)
		if !slices.Equal(hosts, want) {
			bad("STEPUP_MONGODB_URI lists %v, want every replica set member %v", hosts, want)
		}
		if opts["replicaSet"] != "rs0" {
			bad("STEPUP_MONGODB_URI: replicaSet=%q, want rs0", opts["replicaSet"])
		}
	}

	// The load balancer.
	if lb, ok := p.Services["lb"]; !ok {
		bad("no lb service")
	} else {
		if !slices.ContainsFunc(lb.Ports, func(pc types.ServicePortConfig) bool { return pc.Published == "8080" && pc.Target == 8080 }) {
			bad("lb: does not publish 8080:8080, got %v", lb.Ports)
		}
		for _, name := range stepups {
			if _, ok := lb.DependsOn[name]; !ok {
				bad("lb: does not depend on %s", name)
			}
		}
		conf := ""
		for _, v := range lb.Volumes {
			if v.Target == "/etc/nginx/nginx.conf" {
				conf = v.Source
			}
		}
		if conf == "" {
			bad("lb: nginx.conf is not mounted on /etc/nginx/nginx.conf")
		} else if _, err := os.Stat(conf); err != nil {
			bad("lb: %v", err)
		}
	}
	return errs
}

// parseMongoURI splits mongodb://[user@]h1,h2/db?k=v into its hosts and options.
func parseMongoURI(uri string) (hosts []string, opts map[string]string, err error) {
	rest, ok := strings.CutPrefix(uri, "mongodb://")
	if !ok {
		return nil, nil, fmt.Errorf("%q does not start with mongodb://", uri)
	}
	rest, query, _ := strings.Cut(rest, "?")
	hostPart, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(hostPart, "@"); i >= 0 {
		hostPart = hostPart[i+1:]
	}
	hosts = strings.Split(hostPart, ",")
	opts = map[string]string{}
	for kv := range strings.SplitSeq(query, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			opts[k] = v
		}
	}
	return hosts, opts, nil
}

func TestCompose(t *testing.T) {
	p, err := loadCompose(t, map[string]string{"STEPUP_MASTER_KEY": dummyMasterKey})
	if err != nil {
		t.Fatalf("docker compose config would fail: %v", err)
	}
	if p.Name != "stepup" {
		t.Errorf("project name %q, want stepup", p.Name)
	}
	reportProblems(t, "deploy/compose/compose.yaml", checkCompose(p, repoRoot(t), knownSettings(t)))
}

// TestComposeRequiresMasterKey: ${STEPUP_MASTER_KEY:?...} refuses to start
// the stack with the key unset or empty.
func TestComposeRequiresMasterKey(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"unset": {},
		"empty": {"STEPUP_MASTER_KEY": ""},
	} {
		_, err := loadCompose(t, env)
		if err == nil || !strings.Contains(err.Error(), "STEPUP_MASTER_KEY") {
			t.Errorf("%s: loading without STEPUP_MASTER_KEY gave %v, want an error naming it", name, err)
		}
	}
}

// TestComposeSchemaEnforced proves the loader validates against the compose
// JSON schema offline: a misspelt key must fail to load.
func TestComposeSchemaEnforced(t *testing.T) {
	_, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir: t.TempDir(),
		ConfigFiles: []types.ConfigFile{{Filename: "compose.yaml", Content: []byte(
			"name: x\nservices:\n  a:\n    image: busybox\n    restart_policy: always\n")}},
	})
	if err == nil || !strings.Contains(err.Error(), "restart_policy") {
		t.Errorf("unknown service key loaded: %v", err)
	}
}

func TestComposeChecksCatchMistakes(t *testing.T) {
	repo, known := repoRoot(t), knownSettings(t)
	for _, tc := range []struct {
		name, want string
		breakIt    func(p *types.Project)
	}{
		{"two stepups", "want three stepup services", func(p *types.Project) { delete(p.Services, "stepup3") }},
		{"uri member", "every replica set member", func(p *types.Project) {
			s := p.Services["stepup1"]
			uri := "mongodb://mongo1:27017,mongo2:27017/stepup?replicaSet=rs0"
			s.Environment = maps.Clone(s.Environment)
			s.Environment["STEPUP_MONGODB_URI"] = &uri
			for _, n := range []string{"stepup1", "stepup2", "stepup3"} {
				p.Services[n] = s
			}
		}},
		{"env differs", "environment differs", func(p *types.Project) {
			s := p.Services["stepup2"]
			s.Environment = maps.Clone(s.Environment)
			v := "debug"
			s.Environment["STEPUP_LOG_LEVEL"] = &v
			p.Services["stepup2"] = s
		}},
		{"replset", "--replSet rs0", func(p *types.Project) {
			s := p.Services["mongo2"]
			s.Command = types.ShellCommand{"mongod", "--replSet", "rs1", "--bind_ip_all"}
			p.Services["mongo2"] = s
		}},
		{"lb port", "does not publish 8080", func(p *types.Project) {
			s := p.Services["lb"]
			s.Ports = nil
			p.Services["lb"] = s
		}},
		{"no init", "no mongo-init", func(p *types.Project) { delete(p.Services, "mongo-init") }},
		{"loopback addr", "loopback", func(p *types.Project) { setEnv(p, "STEPUP_ADDR", "127.0.0.1:8080") }},
		{"no addr", "STEPUP_ADDR is not set", func(p *types.Project) { setEnv(p, "STEPUP_ADDR", "") }},
		{"admin on public port", "STEPUP_ADMIN_ADDR", func(p *types.Project) { setEnv(p, "STEPUP_ADMIN_ADDR", ":8080") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadCompose(t, map[string]string{"STEPUP_MASTER_KEY": dummyMasterKey})
			if err != nil {
				t.Fatal(err)
			}
			tc.breakIt(p)
			expectProblem(t, checkCompose(p, repo, known), tc.want)
		})
	}
}

// setEnv sets (or, with "", removes) a variable on every stepup service.
func setEnv(p *types.Project, k, v string) {
	for name, s := range p.Services {
		if !stepupService.MatchString(name) {
			continue
		}
		s.Environment = maps.Clone(s.Environment)
		if v == "" {
			delete(s.Environment, k)
		} else {
			s.Environment[k] = &v
		}
		p.Services[name] = s
	}
}

var (
	nginxUpstream = regexp.MustCompile(`(?s)upstream\s+([\w.-]+)\s*\{(.*?)\}`)
	nginxServer   = regexp.MustCompile(`(?m)^\s*server\s+([^\s;]+)`)
	nginxListen   = regexp.MustCompile(`(?m)^\s*listen\s+(\d+)\s*;`)
	nginxPass     = regexp.MustCompile(`(?m)^\s*proxy_pass\s+http://([\w.-]+)\s*;`)
)

// checkNginx is a text check that nginx.conf balances over every stepup
// service on :8080 and listens on the port the lb publishes.
func checkNginx(conf string, stepups []string) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	up := nginxUpstream.FindStringSubmatch(conf)
	if up == nil {
		return []error{fmt.Errorf("no upstream block")}
	}
	var servers []string
	for _, m := range nginxServer.FindAllStringSubmatch(up[2], -1) {
		servers = append(servers, m[1])
	}
	var want []string
	for _, s := range stepups {
		want = append(want, s+":8080")
	}
	sort.Strings(servers)
	if !slices.Equal(servers, want) {
		bad("upstream %s lists %v, want %v", up[1], servers, want)
	}
	if l := nginxListen.FindStringSubmatch(conf); l == nil || l[1] != "8080" {
		bad("server does not listen on 8080")
	}
	if pp := nginxPass.FindStringSubmatch(conf); pp == nil || pp[1] != up[1] {
		bad("proxy_pass does not go to upstream %s", up[1])
	}
	return errs
}

func TestNginxConf(t *testing.T) {
	p, err := loadCompose(t, map[string]string{"STEPUP_MASTER_KEY": dummyMasterKey})
	if err != nil {
		t.Fatal(err)
	}
	var stepups []string
	for name := range p.Services {
		if stepupService.MatchString(name) {
			stepups = append(stepups, name)
		}
	}
	sort.Strings(stepups)
	conf := string(readRepoFile(t, "deploy", "compose", "nginx.conf"))
	reportProblems(t, "deploy/compose/nginx.conf", checkNginx(conf, stepups))
	expectProblem(t, checkNginx(strings.Replace(conf, "server stepup3:8080", "# server stepup3:8080", 1), stepups), "upstream stepup lists")
}
