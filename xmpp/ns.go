package xmpp

// Namespaces used across the server. Only the ones the server speaks are here.
const (
	NSFraming    = "urn:ietf:params:xml:ns:xmpp-framing"
	NSStream     = "http://etherx.jabber.org/streams"
	NSClient     = "jabber:client"
	NSServer     = "jabber:server"
	NSStreams    = "urn:ietf:params:xml:ns:xmpp-streams"
	NSStanzas    = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSSASL       = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind       = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSession    = "urn:ietf:params:xml:ns:xmpp-session"
	NSDiscoInfo  = "http://jabber.org/protocol/disco#info"
	NSDiscoItems = "http://jabber.org/protocol/disco#items"
	NSPing       = "urn:xmpp:ping"
	NSRoster     = "jabber:iq:roster"
	NSVersion    = "jabber:iq:version"
	NSRSM        = "http://jabber.org/protocol/rsm"
	NSDataForm   = "jabber:x:data"
	NSDelay      = "urn:xmpp:delay"
	NSXML        = "http://www.w3.org/XML/1998/namespace"
)
