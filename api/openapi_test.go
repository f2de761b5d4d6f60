package api

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/stepup-auth/stepup/mfa"
)

// The contract test: openapi.yaml at the repository root must describe
// exactly the routes NewServer registers, and every problem code the
// handlers can send.

type oaDoc struct {
	Paths      map[string]oaPathItem `yaml:"paths"`
	Components struct {
		Schemas         map[string]oaSchema         `yaml:"schemas"`
		Responses       map[string]oaResponse       `yaml:"responses"`
		SecuritySchemes map[string]oaSecurityScheme `yaml:"securitySchemes"`
	} `yaml:"components"`
}

type oaPathItem struct {
	Get     *oaOperation `yaml:"get"`
	Put     *oaOperation `yaml:"put"`
	Post    *oaOperation `yaml:"post"`
	Delete  *oaOperation `yaml:"delete"`
	Options *oaOperation `yaml:"options"`
	Head    *oaOperation `yaml:"head"`
	Patch   *oaOperation `yaml:"patch"`
	Trace   *oaOperation `yaml:"trace"`
}

func (p oaPathItem) operations() map[string]*oaOperation {
	all := map[string]*oaOperation{
		http.MethodGet: p.Get, http.MethodPut: p.Put, http.MethodPost: p.Post, http.MethodDelete: p.Delete,
		http.MethodOptions: p.Options, http.MethodHead: p.Head, http.MethodPatch: p.Patch, http.MethodTrace: p.Trace,
	}
	for m, op := range all {
		if op == nil {
			delete(all, m)
		}
	}
	return all
}

type oaOperation struct {
	OperationID string                `yaml:"operationId"`
	Security    *[]map[string][]any   `yaml:"security"`
	RequestBody *struct{}             `yaml:"requestBody"`
	Responses   map[string]oaResponse `yaml:"responses"`
}

type oaResponse struct {
	Ref     string         `yaml:"$ref"`
	Headers map[string]any `yaml:"headers"`
	Content map[string]any `yaml:"content"`
}

type oaSecurityScheme struct {
	Type   string `yaml:"type"`
	Scheme string `yaml:"scheme"`
}

type oaSchema struct {
	Properties map[string]struct {
		Enum        []string `yaml:"enum"`
		Description string   `yaml:"description"`
	} `yaml:"properties"`
}

func loadOpenAPI(t *testing.T) oaDoc {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "openapi.yaml"))
	if err != nil {
		t.Fatalf("read openapi.yaml: %v", err)
	}
	var doc oaDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	if len(doc.Paths) == 0 {
		t.Fatal("openapi.yaml has no paths")
	}
	return doc
}

// resolve follows a components/responses $ref.
func (d oaDoc) resolve(t *testing.T, r oaResponse) oaResponse {
	t.Helper()
	const prefix = "#/components/responses/"
	if r.Ref == "" {
		return r
	}
	name, ok := strings.CutPrefix(r.Ref, prefix)
	target, found := d.Components.Responses[name]
	if !ok || !found {
		t.Errorf("unresolvable response $ref %q", r.Ref)
		return oaResponse{}
	}
	return target
}

func contractServer() *Server {
	return NewServer(Config{Issuer: "http://localhost:8080"}, Deps{Logger: slog.New(slog.DiscardHandler)})
}

// contract is both listeners' handlers: the public one and the admin one
// (without /metrics, which is not part of the HTTP contract).
type contract struct{ public, admin *Server }

func newContract() contract {
	s := contractServer()
	return contract{public: s, admin: s.NewAdmin(nil)}
}

func (c contract) Routes() [][2]string { return append(c.public.Routes(), c.admin.Routes()...) }

// ServeHTTP sends /admin/ to the admin listener's handler, the rest to the
// public one.
func (c contract) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/admin/") {
		c.admin.ServeHTTP(w, r)
		return
	}
	c.public.ServeHTTP(w, r)
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// openAPIPath turns Gin's /a/:id/b into OpenAPI's /a/{id}/b.
func openAPIPath(ginPath string) string { return ginParam.ReplaceAllString(ginPath, "{$1}") }

func TestOpenAPIRoutesMatchServer(t *testing.T) {
	doc := loadOpenAPI(t)
	server := map[string]bool{}
	for _, r := range newContract().Routes() {
		server[r[0]+" "+openAPIPath(r[1])] = true
	}
	spec := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item.operations() {
			spec[method+" "+path] = true
		}
	}
	var missingInSpec, missingInServer []string
	for r := range server {
		if !spec[r] {
			missingInSpec = append(missingInSpec, r)
		}
	}
	for r := range spec {
		if !server[r] {
			missingInServer = append(missingInServer, r)
		}
	}
	slices.Sort(missingInSpec)
	slices.Sort(missingInServer)
	if len(missingInSpec) > 0 {
		t.Errorf("routes registered in api/server.go but missing from openapi.yaml:\n\t%s",
			strings.Join(missingInSpec, "\n\t"))
	}
	if len(missingInServer) > 0 {
		t.Errorf("operations in openapi.yaml that api/server.go does not register:\n\t%s",
			strings.Join(missingInServer, "\n\t"))
	}
}

// TestOpenAPIOperationsShape checks what every operation must say: its
// security (explicitly, [] for none), a problem+json 400 when it takes a
// body, problem+json for every error status, WWW-Authenticate on 401 and
// Retry-After on 429.
func TestOpenAPIOperationsShape(t *testing.T) {
	doc := loadOpenAPI(t)
	for path, item := range doc.Paths {
		for method, op := range item.operations() {
			name := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", name)
			}
			if op.Security == nil {
				t.Errorf("%s: no security (write security: [] for a public route)", name)
			} else if len(*op.Security) > 1 {
				t.Errorf("%s: lists %d security alternatives; each route accepts exactly one token kind", name, len(*op.Security))
			}
			if op.RequestBody != nil {
				r, ok := op.Responses["400"]
				if !ok || doc.resolve(t, r).Content["application/problem+json"] == nil {
					t.Errorf("%s: has a requestBody but no application/problem+json 400 response", name)
				}
			}
			if _, ok := op.Responses["500"]; !ok {
				t.Errorf("%s: no 500 response", name)
			}
			for status, r := range op.Responses {
				code, err := strconv.Atoi(status)
				if err != nil {
					t.Errorf("%s: response key %q is not a status code", name, status)
					continue
				}
				r = doc.resolve(t, r)
				if code >= 400 {
					if len(r.Content) != 1 || r.Content["application/problem+json"] == nil {
						t.Errorf("%s %d: content must be application/problem+json only", name, code)
					}
				}
				if code == 401 && r.Headers["WWW-Authenticate"] == nil {
					t.Errorf("%s 401: no WWW-Authenticate header", name)
				}
				if code == 429 && r.Headers["Retry-After"] == nil {
					t.Errorf("%s 429: no Retry-After header", name)
				}
			}
		}
	}
}

// TestOpenAPISecurityMatchesServer sends every documented operation
// without credentials: a route that declares a security scheme must answer
// 401 with a challenge of that scheme, and a public one must not ask for
// credentials.
func TestOpenAPISecurityMatchesServer(t *testing.T) {
	doc := loadOpenAPI(t)
	srv := newContract()
	for path, item := range doc.Paths {
		for method, op := range item.operations() {
			if op.Security == nil {
				continue // reported by TestOpenAPIOperationsShape
			}
			target := strings.NewReplacer("{", "", "}", "").Replace(path)
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
			var p struct{ Code string }
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
				_ = json.Unmarshal(rec.Body.Bytes(), &p)
			}
			challenge := rec.Header().Get("WWW-Authenticate")
			if len(*op.Security) == 0 {
				if rec.Code == http.StatusUnauthorized && (p.Code == "invalid_token" || p.Code == "invalid_client") {
					t.Errorf("%s %s: declares security: [] but answered 401 %q (%s) without credentials", method, path, p.Code, challenge)
				}
				continue
			}
			for name := range (*op.Security)[0] {
				scheme, ok := doc.Components.SecuritySchemes[name]
				if !ok {
					t.Errorf("%s %s: unknown security scheme %q", method, path, name)
					continue
				}
				prefix := scheme.Scheme + " "
				if rec.Code != http.StatusUnauthorized || len(challenge) < len(prefix) || !strings.EqualFold(challenge[:len(prefix)], prefix) {
					t.Errorf("%s %s: declares %s (%s) but answered %d %q, WWW-Authenticate %q, without credentials",
						method, path, name, scheme.Scheme, rec.Code, p.Code, challenge)
				}
			}
		}
	}
}

// TestOpenAPIProblemCodes compares the Problem code enum with the codes the
// non-test sources of this package pass to problem(status, code, detail) or
// put in a Problem{Code: …} literal.
func TestOpenAPIProblemCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	enum := doc.Components.Schemas["Problem"].Properties["code"].Enum
	if len(enum) == 0 {
		t.Fatal("openapi.yaml: components.schemas.Problem.properties.code has no enum")
	}
	// The code list is the service's: every declared constant is in it, and
	// every row of the error table uses one of them.
	declared := declaredCodes(t)
	for _, c := range declared {
		if !slices.Contains(Codes, Code(c)) {
			t.Errorf("codes.go declares %q but Codes does not list it", c)
		}
	}
	if len(declared) != len(Codes) {
		t.Errorf("Codes lists %d codes, codes.go declares %d", len(Codes), len(declared))
	}
	for _, e := range errorTable {
		if !slices.Contains(Codes, e.code) {
			t.Errorf("error table row for %v uses undeclared code %q", e.err, e.code)
		}
	}
	var undocumented, unused []string
	for _, c := range Codes {
		if !slices.Contains(enum, string(c)) {
			undocumented = append(undocumented, string(c))
		}
	}
	for _, c := range enum {
		if !slices.Contains(Codes, Code(c)) {
			unused = append(unused, c)
		}
	}
	if len(undocumented) > 0 {
		t.Errorf("problem codes the service sends but openapi.yaml's Problem code enum lacks:\n\t%s", strings.Join(undocumented, "\n\t"))
	}
	if len(unused) > 0 {
		t.Errorf("Problem code enum values in openapi.yaml the service never sends:\n\t%s", strings.Join(unused, "\n\t"))
	}
	// The enum's description gives every code its status: check each
	// code's status there against the error table.
	desc := doc.Components.Schemas["Problem"].Properties["code"].Description
	for _, e := range errorTable {
		_, rest, found := strings.Cut(desc, fmt.Sprintf("`%s` (", e.code))
		paren, _, _ := strings.Cut(rest, ")")
		if !found || !strings.Contains(paren, fmt.Sprint(e.status)) {
			t.Errorf("openapi.yaml's code description does not give %s the status %d of the error table", e.code, e.status)
		}
	}
}

// declaredCodes returns the values of the Code constants in codes.go.
func declaredCodes(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "codes.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
			return true
		}
		for _, v := range vs.Values {
			if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, _ := strconv.Unquote(lit.Value)
				out = append(out, s)
			}
		}
		return true
	})
	return out
}

// TestOpenAPIMetadata: the metadata document has exactly the members its
// schema declares (additionalProperties is false), nested objects too.
func TestOpenAPIMetadata(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type schema struct {
		Required   []string          `yaml:"required"`
		Properties map[string]schema `yaml:"properties"`
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Config{Issuer: "http://localhost:8080", MFAAudience: "http://localhost:8080/v1/mfa"},
		Deps{Policy: mfa.DefaultPolicy})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-authorization-server", nil))
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var check func(path string, v map[string]any, s schema)
	check = func(path string, v map[string]any, s schema) {
		for k, val := range v {
			sub, ok := s.Properties[k]
			if !ok {
				t.Errorf("metadata member %s%s is not in the schema", path, k)
				continue
			}
			if obj, ok := val.(map[string]any); ok {
				check(path+k+".", obj, sub)
			}
		}
		for _, k := range s.Required {
			if _, ok := v[k]; !ok {
				t.Errorf("metadata lacks required member %s%s", path, k)
			}
		}
	}
	check("", got, doc.Components.Schemas["Metadata"])
}
