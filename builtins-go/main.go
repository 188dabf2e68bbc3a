// Command verdict-builtins is OPA's own Go implementation of the builtins whose answers are Go
// structures marshalled by Go (x509 certificates, GraphQL and Rego ASTs, JSON Schema errors,
// text/template, net/url), compiled to WebAssembly (GOOS=wasip1, -buildmode=c-shared) so that
// Verdict answers exactly as OPA does (docs/decisions/0022). Verdict's engine loads it lazily
// (src/engine/go-builtins.ts) and grants it no file, environment or network access.
//
// ABI: the host asks for an input buffer with verdict_input(size), writes the request there and
// calls verdict_call(size), which returns the length of the reply, read at verdict_output().
// Request (JSON text, or Rego value text when an operand holds a set):
//
//	{"name": "uri.parse", "now": 1765000000000000000, "args": [<operand>, ...]}
//
// Reply: "v" + the result in OPA's value format (JSON, sets as {…}), "u" (undefined: the builtin
// produced no value), "e" + message (the builtin's error: undefined in OPA's non-strict
// evaluation), or "h" + message (an error that halts the evaluation, or a request this module
// cannot read).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/cache"
)

// Provided lists the builtins this module answers; any other name is refused ("h").
var Provided = map[string]bool{
	"crypto.parse_private_keys":                              true,
	"crypto.x509.parse_and_verify_certificates":              true,
	"crypto.x509.parse_and_verify_certificates_with_options": true,
	"crypto.x509.parse_certificate_request":                  true,
	"crypto.x509.parse_certificates":                         true,
	"crypto.x509.parse_keypair":                              true,
	"crypto.x509.parse_rsa_private_key":                      true,
	"graphql.is_valid":                                       true,
	"graphql.parse":                                          true,
	"graphql.parse_and_verify":                               true,
	"graphql.parse_query":                                    true,
	"graphql.parse_schema":                                   true,
	"graphql.schema_is_valid":                                true,
	"json.match_schema":                                      true,
	"json.verify_schema":                                     true,
	"regex.globs_match":                                      true,
	"rego.parse_module":                                      true,
	"strings.render_template":                                true,
	"uri.is_valid":                                           true,
	"uri.parse":                                              true,
}

var input []byte
var output []byte

// valueCache keeps what OPA's builtins compile from a value (a JSON schema, a GraphQL schema)
// between calls, as OPA's server does; bounded, and it changes no answer.
var valueCache = func() cache.InterQueryValueCache {
	config, err := cache.ParseCachingConfig([]byte(`{"inter_query_builtin_value_cache":
		{"max_num_entries": 1000, "named": {"graphql": {"max_num_entries": 100}}}}`))
	if err != nil {
		panic(err)
	}
	return cache.NewInterQueryValueCache(context.Background(), config)
}()

//go:wasmexport verdict_input
func verdictInput(size int32) int32 {
	if int(size) > cap(input) {
		input = make([]byte, size)
	}
	input = input[:size]
	if size == 0 {
		return 0
	}
	return int32(uintptr(unsafe.Pointer(&input[0])))
}

//go:wasmexport verdict_output
func verdictOutput() int32 {
	if len(output) == 0 {
		return 0
	}
	return int32(uintptr(unsafe.Pointer(&output[0])))
}

//go:wasmexport verdict_call
func verdictCall(size int32) int32 {
	output = Call(input[:size])
	return int32(len(output))
}

type request struct {
	Name string
	Now  *ast.Term
	Args []*ast.Term
}

func parseRequest(text []byte) (request, error) {
	var req request
	var term *ast.Term
	var raw any
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&raw); err == nil {
		v, err := ast.InterfaceToValue(raw)
		if err != nil {
			return req, err
		}
		term = ast.NewTerm(v)
	} else {
		// An operand holds a set (or a non-string key): Rego's term syntax reads the value format.
		t, err := ast.ParseTerm(string(text))
		if err != nil {
			return req, err
		}
		term = t
	}
	obj, ok := term.Value.(ast.Object)
	if !ok {
		return req, errors.New("the request is not an object")
	}
	name, ok := obj.Get(ast.InternedTerm("name")).Value.(ast.String)
	if !ok {
		return req, errors.New("the request has no name")
	}
	req.Name = string(name)
	if now := obj.Get(ast.InternedTerm("now")); now != nil {
		if _, isNull := now.Value.(ast.Null); !isNull {
			req.Now = now
		}
	}
	args, ok := obj.Get(ast.InternedTerm("args")).Value.(*ast.Array)
	if !ok {
		return req, errors.New("the request has no args")
	}
	for i := range args.Len() {
		req.Args = append(req.Args, args.Elem(i))
	}
	return req, nil
}

// Call answers one request (see the package comment).
func Call(text []byte) (reply []byte) {
	defer func() {
		if r := recover(); r != nil {
			reply = []byte(fmt.Sprintf("hpanic: %v", r))
		}
	}()
	req, err := parseRequest(text)
	if err != nil {
		return []byte("hbad request: " + err.Error())
	}
	if !Provided[req.Name] {
		return []byte("hbuiltin " + req.Name + " is not in this module")
	}
	fn := topdown.GetBuiltin(req.Name)
	if fn == nil {
		return []byte("hbuiltin " + req.Name + " is not registered by OPA")
	}
	bctx := topdown.BuiltinContext{
		Context:                     context.Background(),
		Metrics:                     metrics.NoOp(),
		Time:                        req.Now,
		InterQueryBuiltinValueCache: valueCache,
		// No remote $ref in a JSON schema: nothing may leave the PDP.
		Capabilities: &ast.Capabilities{AllowNet: []string{}},
	}
	var result *ast.Term
	err = fn(bctx, req.Args, func(t *ast.Term) error {
		if result == nil {
			result = t
		}
		return nil
	})
	if err != nil {
		var halt topdown.Halt
		if errors.As(err, &halt) {
			return []byte("h" + err.Error())
		}
		return []byte("e" + err.Error())
	}
	if result == nil {
		return []byte("u")
	}
	var buf bytes.Buffer
	buf.WriteByte('v')
	if err := writeValue(&buf, result.Value); err != nil {
		return []byte("h" + err.Error())
	}
	return buf.Bytes()
}

// writeValue writes v in OPA's wasm value format: JSON, with sets as {a,b} (set() when empty) and
// object keys of any type; members in OPA's order.
func writeValue(buf *bytes.Buffer, v ast.Value) error {
	switch x := v.(type) {
	case ast.Null:
		buf.WriteString("null")
	case ast.Boolean:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case ast.Number:
		buf.WriteString(string(x))
	case ast.String:
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(string(x)); err != nil {
			return err
		}
		buf.Truncate(buf.Len() - 1) // the encoder's newline
	case *ast.Array:
		buf.WriteByte('[')
		for i := range x.Len() {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeValue(buf, x.Elem(i).Value); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case ast.Set:
		if x.Len() == 0 {
			buf.WriteString("set()")
			return nil
		}
		members := x.Slice()
		sort.Slice(members, func(i, j int) bool { return members[i].Value.Compare(members[j].Value) < 0 })
		buf.WriteByte('{')
		for i, m := range members {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeValue(buf, m.Value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case ast.Object:
		buf.WriteByte('{')
		first := true
		var err error
		x.Foreach(func(k, val *ast.Term) {
			if err != nil {
				return
			}
			if !first {
				buf.WriteByte(',')
			}
			first = false
			if err = writeValue(buf, k.Value); err != nil {
				return
			}
			buf.WriteByte(':')
			err = writeValue(buf, val.Value)
		})
		if err != nil {
			return err
		}
		buf.WriteByte('}')
	default:
		return fmt.Errorf("a result of type %s cannot leave the module", ast.ValueName(v))
	}
	return nil
}

func main() {}
