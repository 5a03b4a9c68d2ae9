package xmpp

// Namespaces of the single-round-trip login: XEP-0388 SASL2, XEP-0386
// Bind2 and XEP-0484 FAST. Kept apart from ns.go so that the extensions'
// vocabulary reads as one set.
const (
	NSSASL2 = "urn:xmpp:sasl:2"
	NSBind2 = "urn:xmpp:bind:0"
	NSFAST  = "urn:xmpp:fast:0"
)
