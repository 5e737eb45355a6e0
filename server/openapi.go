package server

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sort"

	"github.com/fieldsync/fieldsync/sync"
	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"
)

// The OpenAPI description is kept in parts, one per area of the API (openapi/*.json): base.json
// holds the document's head, conventions and shared components, and each other part adds its
// paths and components. They are merged once at start; TestOpenAPIDescribesEveryRoute keeps the
// result true to the routes. The records' enumerations (statuses, kinds) are not written in the
// parts but taken from the domain's (sync.Enums), so the description cannot drift from the state
// machines: see fillEnums.
//
//go:embed openapi/*.json
var openAPIParts embed.FS

// openAPI is the merged description served at /openapi.json.
var openAPI = mustMergeOpenAPI(openAPIParts)

// openAPIYAML is the same description as YAML, served at /openapi.yaml for the tools that read
// only YAML. It is made from openAPI, so the two never differ.
var openAPIYAML = mustYAML(openAPI)

// OpenAPI returns the merged description served at /openapi.json (the caller must not change it).
func OpenAPI() []byte { return openAPI }

func handleOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPI)
}

func handleOpenAPIYAML(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", openAPIYAML)
}

// mustYAML converts a JSON document to YAML. Keys come out sorted (the merged document is a map).
func mustYAML(doc []byte) []byte {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		panic(err)
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		panic(err)
	}
	return out
}

func mustMergeOpenAPI(parts fs.FS) []byte {
	doc, err := mergeOpenAPI(parts)
	if err != nil {
		panic(err)
	}
	return doc
}

// mergeOpenAPI merges openapi/base.json with every other part: their paths, their components
// (schemas, responses, parameters, headers...) and their tags. A path, method or component
// defined twice is an error, so parts cannot silently overwrite each other.
func mergeOpenAPI(parts fs.FS) ([]byte, error) {
	read := func(name string) (map[string]any, error) {
		data, err := fs.ReadFile(parts, name)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return m, nil
	}
	doc, err := read("openapi/base.json")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(parts, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "openapi/base.json" {
			continue
		}
		part, err := read(name)
		if err != nil {
			return nil, err
		}
		paths := objectAt(doc, "paths")
		for path, item := range objectOf(part["paths"]) {
			existing := objectOf(paths[path])
			for method, op := range objectOf(item) {
				if _, dup := existing[method]; dup {
					return nil, fmt.Errorf("%s: %s %s is described twice", name, method, path)
				}
				existing[method] = op
			}
			paths[path] = existing
		}
		components := objectAt(doc, "components")
		for kind, entries := range objectOf(part["components"]) {
			target := objectAt(components, kind)
			for key, v := range objectOf(entries) {
				if _, dup := target[key]; dup {
					return nil, fmt.Errorf("%s: components.%s.%s is defined twice", name, kind, key)
				}
				target[key] = v
			}
		}
		if tags, ok := part["tags"].([]any); ok {
			existing, _ := doc["tags"].([]any)
			doc["tags"] = append(existing, tags...)
		}
	}
	if err := fillEnums(doc, sync.Enums()); err != nil {
		return nil, err
	}
	return json.MarshalIndent(doc, "", "  ")
}

// fillEnums writes the domain's enumerations into the description, where the parts name them:
// a schema with "x-enum-from": "task.status" gets that enum; an object schema with
// "x-keys-from": "claim.status" gets one required property per value, each described by its
// "x-each" schema (a count by status, say). The markers are not served.
func fillEnums(v any, enums map[string][]string) error {
	switch v := v.(type) {
	case map[string]any:
		if name, ok := v["x-enum-from"]; ok {
			values, err := enumNamed(enums, name)
			if err != nil {
				return err
			}
			v["enum"] = values
			delete(v, "x-enum-from")
		}
		if name, ok := v["x-keys-from"]; ok {
			values, err := enumNamed(enums, name)
			if err != nil {
				return err
			}
			props := make(map[string]any, len(values))
			for _, key := range values {
				props[key] = v["x-each"]
			}
			v["required"], v["properties"] = values, props
			delete(v, "x-keys-from")
			delete(v, "x-each")
		}
		for _, child := range v {
			if err := fillEnums(child, enums); err != nil {
				return err
			}
		}
	case []any:
		for _, child := range v {
			if err := fillEnums(child, enums); err != nil {
				return err
			}
		}
	}
	return nil
}

func enumNamed(enums map[string][]string, name any) ([]string, error) {
	s, _ := name.(string)
	values, ok := enums[s]
	if !ok {
		return nil, fmt.Errorf("the description names an enumeration the domain does not have: %v", name)
	}
	return values, nil
}

// objectAt returns m[key] as an object, creating it if absent.
func objectAt(m map[string]any, key string) map[string]any {
	if o, ok := m[key].(map[string]any); ok {
		return o
	}
	o := map[string]any{}
	m[key] = o
	return o
}

func objectOf(v any) map[string]any {
	o, _ := v.(map[string]any)
	if o == nil {
		return map[string]any{}
	}
	return o
}
