package ws

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wschat/xmppws/xmpp"
)

// TestStreamConditionsListed: every stream error condition that the
// endpoint or the element parser writes in a StreamError literal is in
// streamConditions, so xmpp_stream_errors_total has its series at zero
// for each condition the server can send.
func TestStreamConditionsListed(t *testing.T) {
	listed := map[xmpp.Condition]bool{}
	for _, c := range streamConditions {
		listed[c] = true
	}
	// Constant name → value, from the xmpp package's source.
	values := map[string]xmpp.Condition{}
	used := map[string]string{} // constant name → where
	for _, dir := range []string{".", "../xmpp"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.ValueSpec:
					if id, ok := n.Type.(*ast.Ident); ok && id.Name == "Condition" && dir == "../xmpp" {
						for i, v := range n.Values {
							if lit, ok := v.(*ast.BasicLit); ok {
								values[n.Names[i].Name] = xmpp.Condition(strings.Trim(lit.Value, `"`))
							}
						}
					}
				case *ast.CompositeLit:
					if !isStreamError(n.Type) {
						return true
					}
					for _, e := range n.Elts {
						kv, ok := e.(*ast.KeyValueExpr)
						if !ok || kv.Key.(*ast.Ident).Name != "Condition" {
							continue
						}
						switch v := kv.Value.(type) {
						case *ast.Ident:
							used[v.Name] = fset.Position(v.Pos()).String()
						case *ast.SelectorExpr:
							used[v.Sel.Name] = fset.Position(v.Pos()).String()
						default:
							t.Errorf("%s: a StreamError whose condition is not a constant: list what it can be in streamConditions and here", fset.Position(v.Pos()))
						}
					}
				}
				return true
			})
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d conditions in StreamError literals: the scan is broken", len(used))
	}
	for name, where := range used {
		v, ok := values[name]
		if !ok {
			t.Errorf("%s: condition %s is not a constant of package xmpp", where, name)
			continue
		}
		if !listed[v] {
			t.Errorf("%s: the server sends %s, which streamConditions lacks", where, v)
		}
	}
}

func isStreamError(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "StreamError"
	case *ast.SelectorExpr:
		return e.Sel.Name == "StreamError"
	}
	return false
}
