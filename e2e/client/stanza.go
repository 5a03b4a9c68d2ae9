package client

import (
	"context"
	"fmt"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/xmpp"
)

// Message builds a jabber:client <message/> for tests to send. Empty to and
// typ leave the attribute out; an empty body leaves <body/> out, for
// messages that carry only other payloads.
func Message(to, typ, body string) *etree.Element {
	m := xmpp.Elem("message", xmpp.NSClient)
	if to != "" {
		m.CreateAttr("to", to)
	}
	if typ != "" {
		m.CreateAttr("type", typ)
	}
	if body != "" {
		m.CreateElement("body").SetText(body)
	}
	return m
}

// IQ builds a jabber:client <iq/> of the given type around payload (nil for
// none), without an id: Client.IQ assigns one. An empty to addresses the
// server on the user's behalf.
func IQ(typ, to string, payload *etree.Element) *etree.Element {
	iq := xmpp.Elem("iq", xmpp.NSClient)
	iq.CreateAttr("type", typ)
	if to != "" {
		iq.CreateAttr("to", to)
	}
	if payload != nil {
		iq.AddChild(payload)
	}
	return iq
}

// IQ sends iq (giving it a unique id if it has none) and waits for the
// result or error with that id, leaving other traffic queued. On type
// 'error' it returns the stanza and a *StanzaError.
func (c *Client) IQ(ctx context.Context, iq *etree.Element) (*etree.Element, error) {
	id := iq.SelectAttrValue("id", "")
	if id == "" {
		id = c.nextID()
		iq.CreateAttr("id", id)
	}
	if err := c.Send(ctx, iq); err != nil {
		return nil, err
	}
	res, err := c.Expect(ctx, func(e *etree.Element) bool {
		if ns := e.NamespaceURI(); e.Tag != "iq" || (ns != xmpp.NSClient && ns != "") {
			return false
		}
		typ := e.SelectAttrValue("type", "")
		return (typ == "result" || typ == "error") && e.SelectAttrValue("id", "") == id
	})
	if err != nil {
		return nil, fmt.Errorf("client: waiting for the answer to iq %s: %w", id, err)
	}
	if res.SelectAttrValue("type", "") == "error" {
		se := ErrorOf(res)
		if se == nil {
			se = &StanzaError{Condition: "undefined-condition", Text: "iq error without <error/>", Element: res}
		}
		return res, se
	}
	return res, nil
}

// Ping sends a XEP-0199 ping to to (empty: the server) and waits for the
// answer; load and liveness checks use it as the cheapest round trip.
func (c *Client) Ping(ctx context.Context, to string) error {
	_, err := c.IQ(ctx, IQ("get", to, xmpp.Elem("ping", xmpp.NSPing)))
	return err
}

// Query builds <query xmlns=ns> with children given as raw XML, the payload
// shape of most requests tests send. It panics on malformed inner XML, which
// is a bug in the test.
func Query(ns, inner string) *etree.Element {
	doc := etree.NewDocument()
	if err := doc.ReadFromString("<query xmlns='" + ns + "'>" + inner + "</query>"); err != nil {
		panic(err)
	}
	q := doc.Root()
	doc.RemoveChild(q)
	return q
}
