package xmpp

import (
	"errors"

	"github.com/beevik/etree"
)

// Condition is a defined condition of RFC 6120: section 8.3.3 for stanza
// errors, 4.9.3 for stream errors. Its value is the element's local name.
type Condition string

// Stanza error conditions (RFC 6120 §8.3.3) that this server emits.
const (
	BadRequest            Condition = "bad-request"
	Conflict              Condition = "conflict"
	FeatureNotImplemented Condition = "feature-not-implemented"
	Forbidden             Condition = "forbidden"
	InternalServerError   Condition = "internal-server-error"
	ItemNotFound          Condition = "item-not-found"
	JIDMalformed          Condition = "jid-malformed"
	NotAcceptable         Condition = "not-acceptable"
	NotAllowed            Condition = "not-allowed"
	NotAuthorized         Condition = "not-authorized"
	PolicyViolation       Condition = "policy-violation"
	RegistrationRequired  Condition = "registration-required"
	RemoteServerNotFound  Condition = "remote-server-not-found"
	ResourceConstraint    Condition = "resource-constraint"
	ServiceUnavailable    Condition = "service-unavailable"
	UnexpectedRequest     Condition = "unexpected-request"
)

// Stream error conditions (RFC 6120 §4.9.3) that this server emits. Those that
// share a name with a stanza condition (conflict, not-authorized,
// policy-violation, resource-constraint, internal-server-error) reuse it.
const (
	BadFormat              Condition = "bad-format"
	BadNamespacePrefix     Condition = "bad-namespace-prefix"
	ConnectionTimeout      Condition = "connection-timeout"
	HostUnknown            Condition = "host-unknown"
	ImproperAddressing     Condition = "improper-addressing"
	InvalidFrom            Condition = "invalid-from"
	InvalidNamespace       Condition = "invalid-namespace"
	InvalidXML             Condition = "invalid-xml"
	NotWellFormed          Condition = "not-well-formed"
	RestrictedXML          Condition = "restricted-xml"
	SystemShutdown         Condition = "system-shutdown"
	UnsupportedEncoding    Condition = "unsupported-encoding"
	UnsupportedStanzaType  Condition = "unsupported-stanza-type"
	UnsupportedVersion     Condition = "unsupported-version"
	SeeOtherHost           Condition = "see-other-host"
	UndefinedConditionName Condition = "undefined-condition"
)

// ErrorType is the 'type' of a stanza error: what the sender should do next.
type ErrorType string

// The five error types of RFC 6120 §8.3.2.
const (
	Auth     ErrorType = "auth"
	Cancel   ErrorType = "cancel"
	Continue ErrorType = "continue"
	Modify   ErrorType = "modify"
	Wait     ErrorType = "wait"
)

// defaultTypes gives each condition the type RFC 6120's examples use, so call
// sites only name the condition.
var defaultTypes = map[Condition]ErrorType{
	BadRequest:            Modify,
	Conflict:              Cancel,
	FeatureNotImplemented: Cancel,
	Forbidden:             Auth,
	InternalServerError:   Cancel,
	ItemNotFound:          Cancel,
	JIDMalformed:          Modify,
	NotAcceptable:         Modify,
	NotAllowed:            Cancel,
	NotAuthorized:         Auth,
	PolicyViolation:       Modify,
	RegistrationRequired:  Auth,
	RemoteServerNotFound:  Cancel,
	ResourceConstraint:    Wait,
	ServiceUnavailable:    Cancel,
	UnexpectedRequest:     Wait,
}

// StanzaError is an error that is answered to the sender as a stanza of type
// 'error'. Protocol code returns it; the layer that owns the reply renders it.
type StanzaError struct {
	Type      ErrorType
	Condition Condition
	Text      string
}

// NewError returns a StanzaError with the condition's usual type.
func NewError(c Condition, text string) *StanzaError {
	t, ok := defaultTypes[c]
	if !ok {
		t = Cancel
	}
	return &StanzaError{Type: t, Condition: c, Text: text}
}

func (e *StanzaError) Error() string {
	if e.Text != "" {
		return string(e.Condition) + ": " + e.Text
	}
	return string(e.Condition)
}

// AsStanzaError finds a StanzaError in err's chain; any other error becomes
// internal-server-error, so a failure is always answered and never dropped.
func AsStanzaError(err error) *StanzaError {
	var se *StanzaError
	if errors.As(err, &se) {
		return se
	}
	return NewError(InternalServerError, "")
}

// Element renders the <error/> child.
func (e *StanzaError) Element() *etree.Element {
	el := etree.NewElement("error")
	el.CreateAttr("type", string(e.Type))
	addCondition(el, e.Condition, e.Text, NSStanzas)
	return el
}

// addCondition appends the condition element and the optional <text/>, both
// in the given namespace, as stanza and stream errors share that shape.
func addCondition(el *etree.Element, c Condition, text, ns string) {
	el.CreateElement(string(c)).CreateAttr("xmlns", ns)
	if text != "" {
		t := el.CreateElement("text")
		t.CreateAttr("xmlns", ns)
		t.CreateAttr("xml:lang", "en")
		t.SetText(text)
	}
}

// StreamError is a fatal error of the whole stream (RFC 6120 §4.9): the
// session sends it, then <close/>, then closes the WebSocket.
type StreamError struct {
	Condition Condition
	Text      string
}

func (e *StreamError) Error() string {
	if e.Text != "" {
		return "stream error " + string(e.Condition) + ": " + e.Text
	}
	return "stream error " + string(e.Condition)
}

// Element renders <stream:error/>.
func (e *StreamError) Element() *etree.Element {
	el := etree.NewElement("stream:error")
	el.CreateAttr("xmlns:stream", NSStream)
	addCondition(el, e.Condition, e.Text, NSStreams)
	return el
}
