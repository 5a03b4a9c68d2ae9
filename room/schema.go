package room

import (
	"strconv"
	"strings"

	"github.com/wschat/xmppws/xmpp"
)

// parse checks a wire value against the field's type and returns its
// canonical text form.
func (f SchemaField) parse(v string) (string, error) {
	switch f.Type {
	case IntegerField:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return "", err
		}
		return strconv.FormatInt(n, 10), nil
	case FloatField:
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return "", err
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	}
	return v, nil
}

// parseConfig validates wire fields against the schema and returns the
// changes keyed by internal key, plus the fields in request order for the
// notification (duplicates: the first wins). Unknown fields, reserved names
// and type errors are bad-request.
func (s Schema) ParseConfig(fields []Field) (Config, []Field, error) {
	changes := make(Config, len(fields))
	var echo []Field
	seen := map[string]bool{}
	for _, fl := range fields {
		if reservedFields[fl.Name] {
			return nil, nil, xmpp.NewError(xmpp.BadRequest, "<"+fl.Name+"/> is not a configuration field")
		}
		f, ok := s.Lookup(fl.Name)
		if !ok {
			return nil, nil, xmpp.NewError(xmpp.BadRequest, fl.Name+": no such configuration field")
		}
		v, err := f.parse(fl.Value)
		if err != nil {
			return nil, nil, xmpp.NewError(xmpp.BadRequest, fl.Name+": not a valid "+f.Type.String())
		}
		if seen[fl.Name] {
			continue
		}
		seen[fl.Name] = true
		changes[f.InternalKey] = v
		echo = append(echo, Field{Name: fl.Name, Value: v})
	}
	return changes, echo, nil
}

// render lists a full configuration as wire fields in schema order, taking
// defaults for anything the stored config lacks.
func (s Schema) Render(c Config) []Field {
	out := make([]Field, 0, len(s))
	for _, f := range s {
		v, ok := c[f.InternalKey]
		if !ok {
			v = f.Default
		}
		out = append(out, Field{Name: f.Name, Value: v})
	}
	return out
}

// RoomName is the name disco and rosters show: the roomname field, or the
// room's node when the schema has none.
func (s Schema) RoomName(room xmpp.JID, c Config) string {
	if f, ok := s.byKey("roomname"); ok {
		if v, ok := c[f.InternalKey]; ok {
			return v
		}
		return f.Default
	}
	return room.Local
}
