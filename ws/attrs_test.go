package ws_test

import (
	"testing"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/xmpp"
)

// A disco query with a prefixed node attribute has no node: the server and
// the account answer it, instead of taking the look-alike for a node they do
// not serve.
func TestDiscoPrefixedNodeIsNoNode(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	alice := e.login("alice", "a")
	for _, tc := range []struct{ name, to, ns string }{
		{"server info", "localhost", xmpp.NSDiscoInfo},
		{"server items", "localhost", xmpp.NSDiscoItems},
		{"account info", "", xmpp.NSDiscoInfo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := client.Query(tc.ns, "")
			q.CreateAttr("xmlns:f", "urn:x")
			q.CreateAttr("f:node", "urn:x#caps")
			res, err := alice.IQ(ctx, client.IQ("get", tc.to, q))
			if err != nil {
				t.Fatalf("%v: %s", err, xmpp.String(res))
			}
			if xmpp.Child(res, "query", tc.ns) == nil {
				t.Fatalf("no %s answer: %s", tc.ns, xmpp.String(res))
			}
		})
	}
}
