package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/sync"
	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"
)

// openAPIMethods are the keys of an OpenAPI path item that are operations.
var openAPIMethods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true,
}

// openAPIPathItemFields are the other keys a path item may have.
var openAPIPathItemFields = map[string]bool{"summary": true, "description": true, "servers": true, "parameters": true}

type openAPIOperation struct {
	OperationID string `json:"operationId"`
	Parameters  []struct {
		Ref  string `json:"$ref"`
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
}

type openAPIDocument struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

// loadOpenAPI parses the embedded document, the one handleOpenAPI serves.
func loadOpenAPI(t *testing.T) openAPIDocument {
	t.Helper()
	var doc openAPIDocument
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return doc
}

// operations returns the document's operations keyed "METHOD /path", failing on a path item key
// that is neither an operation nor a path item field (a misspelt method would otherwise be ignored).
func (doc openAPIDocument) operations(t *testing.T) map[string]openAPIOperation {
	t.Helper()
	ops := map[string]openAPIOperation{}
	for path, item := range doc.Paths {
		// Parameters of the path item apply to each of its operations.
		var shared openAPIOperation
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared.Parameters); err != nil {
				t.Errorf("openapi.json: path %s parameters: %v", path, err)
			}
		}
		for key, raw := range item {
			if !openAPIMethods[key] {
				if !openAPIPathItemFields[key] {
					t.Errorf("openapi.json: path %s has unexpected key %q", path, key)
				}
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Errorf("openapi.json: %s %s: %v", key, path, err)
				continue
			}
			op.Parameters = append(op.Parameters, shared.Parameters...)
			ops[strings.ToUpper(key)+" "+path] = op
		}
	}
	return ops
}

func newOpenAPITestServer() *Server {
	// No request reaches the account service in these tests, so it may be nil: New only stores it.
	return New(Config{MaxBodyBytes: 1 << 20}, Deps{}, slog.New(slog.DiscardHandler))
}

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// registeredRoutes returns the server's routes as "METHOD /path" with OpenAPI's {param} syntax.
func registeredRoutes(t *testing.T, s *Server) map[string]bool {
	t.Helper()
	routes := map[string]bool{}
	for _, r := range s.Routes() {
		// Echo adds routes of its own for every group given middleware: method echo.RouteNotFound
		// ("echo_route_not_found") on the group's prefix and on prefix/*, so that unmatched paths
		// under the group still run its middleware. They are not endpoints. routes() attaches
		// middleware per route, so none appear today; should a group with middleware come back,
		// they are skipped here. Any other route with a "*" is a real wildcard route and is kept:
		// it then fails below, because OpenAPI paths cannot describe it.
		if r.Method == echo.RouteNotFound {
			continue
		}
		routes[r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	if len(routes) == 0 {
		t.Fatal("the server registers no routes")
	}
	return routes
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	s := newOpenAPITestServer()
	routes := registeredRoutes(t, s)
	ops := loadOpenAPI(t).operations(t)

	for _, route := range slices.Sorted(maps.Keys(routes)) {
		if _, ok := ops[route]; !ok {
			t.Errorf("route %s is registered but not described in server/openapi.json", route)
		}
	}
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		if !routes[op] {
			t.Errorf("server/openapi.json describes %s, which is not a registered route", op)
		}
	}
}

// TestOpenAPIPathParameters checks every {param} of a path is declared as a path parameter of
// its operations, and that no path parameter is declared that the path does not have.
func TestOpenAPIPathParameters(t *testing.T) {
	params := regexp.MustCompile(`\{([^}]+)\}`)
	var whole any
	if err := json.Unmarshal(openAPI, &whole); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	for key, op := range loadOpenAPI(t).operations(t) {
		_, path, _ := strings.Cut(key, " ")
		var want []string
		for _, m := range params.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		var got []string
		for _, p := range op.Parameters {
			if p.Ref != "" {
				ref, _ := resolvePointer(whole, strings.TrimPrefix(p.Ref, "#")).(map[string]any)
				p.Name, _ = ref["name"].(string)
				p.In, _ = ref["in"].(string)
			}
			if p.In == "path" {
				got = append(got, p.Name)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("%s declares path parameters %v, want %v", key, got, want)
		}
	}
}

func TestOpenAPIOperationIDsAreUnique(t *testing.T) {
	ops := loadOpenAPI(t).operations(t)
	seen := map[string]string{}
	for _, key := range slices.Sorted(maps.Keys(ops)) {
		op := ops[key]
		switch prev, dup := seen[op.OperationID]; {
		case op.OperationID == "":
			t.Errorf("%s has no operationId", key)
		case dup:
			t.Errorf("%s and %s share operationId %q", prev, key, op.OperationID)
		default:
			seen[op.OperationID] = key
		}
	}
}

// TestOpenAPIRefsResolve checks every local $ref in the document points at something.
func TestOpenAPIRefsResolve(t *testing.T) {
	var doc any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if ref, ok := x.(string); ok && k == "$ref" {
					if !strings.HasPrefix(ref, "#/") {
						t.Errorf("$ref %q is not local to the document", ref)
					} else if resolvePointer(doc, strings.TrimPrefix(ref, "#")) == nil {
						t.Errorf("$ref %q points at nothing", ref)
					}
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

// resolvePointer returns what the JSON pointer ptr names in doc, or nil.
func resolvePointer(doc any, ptr string) any {
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[tok]; !ok {
			return nil
		}
	}
	return cur
}

func TestOpenAPIServed(t *testing.T) {
	s := newOpenAPITestServer()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: status %d, body %s", res.StatusCode, body)
	}
	if mt, _, err := mime.ParseMediaType(res.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
		t.Errorf("GET /openapi.json: Content-Type %q, want %s", res.Header.Get(echo.HeaderContentType), echo.MIMEApplicationJSON)
	}
	if res.Header.Get(echo.HeaderXRequestID) == "" {
		t.Error("GET /openapi.json: no X-Request-Id")
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GET /openapi.json: not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("GET /openapi.json: openapi %q, want 3.x", doc.OpenAPI)
	}
	if len(doc.Paths) == 0 {
		t.Error("GET /openapi.json: no paths")
	}
}

// TestOpenAPIYAMLIsTheSameDocument: /openapi.yaml serves the description /openapi.json does.
func TestOpenAPIYAMLIsTheSameDocument(t *testing.T) {
	s := newOpenAPITestServer()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.yaml", nil))
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.yaml: status %d, body %s", res.StatusCode, body)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get(echo.HeaderContentType)); mt != "application/yaml" {
		t.Errorf("GET /openapi.yaml: Content-Type %q", res.Header.Get(echo.HeaderContentType))
	}
	var fromYAML, fromJSON any
	if err := yaml.Unmarshal(body, &fromYAML); err != nil {
		t.Fatalf("GET /openapi.yaml: not YAML: %v", err)
	}
	if err := json.Unmarshal(openAPI, &fromJSON); err != nil {
		t.Fatal(err)
	}
	// Through JSON, so that YAML's integers and JSON's float64s compare alike.
	asJSON, err := json.Marshal(fromYAML)
	if err != nil {
		t.Fatal(err)
	}
	var roundTrip any
	if err := json.Unmarshal(asJSON, &roundTrip); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(roundTrip, fromJSON) {
		t.Error("/openapi.yaml differs from /openapi.json")
	}
}

// TestOpenAPIEnumsAreTheDomains: the records' statuses and kinds in the served description are the
// domain's, in the state machines' order, and no marker of where they were filled in is served.
func TestOpenAPIEnumsAreTheDomains(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	for schema, want := range map[string]map[string][]string{
		"SyncTask":     {"status": sync.TaskMachine.Strings(), "kind": {"hospital_visit", "document_collection", "follow_up"}},
		"SyncClaim":    {"status": sync.ClaimMachine.Strings()},
		"SyncDocument": {"status": sync.DocumentMachine.Strings()},
	} {
		for field, values := range want {
			if got := doc.Components.Schemas[schema].Properties[field].Enum; !slices.Equal(got, values) {
				t.Errorf("%s.%s: enum %v, want %v", schema, field, got, values)
			}
		}
	}
	if got := sync.ClaimMachine.Strings(); !slices.Equal(got, []string{"reported", "collecting", "under_review", "approved", "paid", "rejected"}) {
		t.Errorf("claim statuses %v: the wire's statuses changed", got)
	}
	for _, marker := range []string{"x-enum-from", "x-keys-from", "x-each"} {
		if strings.Contains(string(openAPI), marker) {
			t.Errorf("the served description still holds %q", marker)
		}
	}
	if err := fillEnums(map[string]any{"x-enum-from": "task.colour"}, sync.Enums()); err == nil {
		t.Error("an enumeration the domain does not have was filled in without an error")
	}
}
