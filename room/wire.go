package room

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// The wire form of requests, replies and events, for the cluster: a JSON
// envelope {"v":1,"type":"post","data":{…}} whose type names the Go type.
// JIDs travel as their canonical text, bytes as base64, times in RFC 3339.

// WireVersion is the envelope version; a receiver refuses others.
const WireVersion = 1

// wireTypes names every type that crosses the wire.
var wireTypes = map[string]reflect.Type{
	"create":          reflect.TypeFor[Create](),
	"post":            reflect.TypeFor[Post](),
	"set_config":      reflect.TypeFor[SetConfig](),
	"change_affs":     reflect.TypeFor[ChangeAffs](),
	"destroy":         reflect.TypeFor[Destroy](),
	"get_config":      reflect.TypeFor[GetConfig](),
	"get_affs":        reflect.TypeFor[GetAffs](),
	"get_info":        reflect.TypeFor[GetInfo](),
	"query_history":   reflect.TypeFor[QueryHistory](),
	"join":            reflect.TypeFor[Join](),
	"leave":           reflect.TypeFor[Leave](),
	"ping":            reflect.TypeFor[Ping](),
	"accept_defaults": reflect.TypeFor[AcceptDefaults](),
	"removed":         reflect.TypeFor[Removed](),
	"moderate":        reflect.TypeFor[Moderate](),
	"reply":           reflect.TypeFor[Reply](),
	"posted":          reflect.TypeFor[Posted](),
	"affs_changed":    reflect.TypeFor[AffsChanged](),
	"config_changed":  reflect.TypeFor[ConfigChanged](),
	"destroyed":       reflect.TypeFor[Destroyed](),
	"occupant_joined": reflect.TypeFor[OccupantJoined](),
	"occupant_left":   reflect.TypeFor[OccupantLeft](),
}

var wireNames = func() map[reflect.Type]string {
	m := make(map[reflect.Type]string, len(wireTypes))
	for n, t := range wireTypes {
		m[t] = n
	}
	return m
}()

// TypeName is the wire name of a request, reply or event (a pointer to one
// of the types above); "" for anything else.
func TypeName(v any) string {
	t := reflect.TypeOf(v)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return wireNames[t]
}

type envelope struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

type wireError struct{ msg string }

func (e *wireError) Error() string { return "room wire: " + e.msg }

// Marshal encodes a request, reply or event (a pointer) in its envelope.
// A nil value is refused: it would arrive as a zero request.
func Marshal(v any) ([]byte, error) {
	name := TypeName(v)
	if name == "" {
		return nil, &wireError{fmt.Sprintf("not a wire type: %T", v)}
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil, &wireError{fmt.Sprintf("nil %T", v)}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(envelope{V: WireVersion, Type: name, Data: data})
}

// Unmarshal decodes an envelope into a pointer to a new value of the type
// it names: a Request, a *Reply or an Event.
func Unmarshal(b []byte) (any, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, err
	}
	if env.V != WireVersion {
		return nil, &wireError{"unknown envelope version"}
	}
	t, ok := wireTypes[env.Type]
	if !ok {
		return nil, &wireError{"unknown type " + env.Type}
	}
	p := reflect.New(t)
	if err := json.Unmarshal(env.Data, p.Interface()); err != nil {
		return nil, err
	}
	return p.Interface(), nil
}
