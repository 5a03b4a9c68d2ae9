package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/api"
	"github.com/wschat/xmppws/e2e/client"
)

// clusterSessions is the JSON of the session endpoints in a cluster.
type clusterSessions struct {
	Sessions []struct {
		JID          string `json:"jid"`
		Node         string `json:"node"`
		PendingBytes int    `json:"pending_bytes"`
	} `json:"sessions"`
	Closed      int      `json:"closed"`
	Unreachable []string `json:"unreachable"`
}

// nodeJIDs renders the listing as "node jid" lines, in the order given.
func (s clusterSessions) nodeJIDs() []string {
	out := []string{}
	for _, x := range s.Sessions {
		out = append(out, x.Node+" "+x.JID)
	}
	return out
}

// streamEnds waits for c's stream to end with the stream error cond.
func streamEnds(ctx context.Context, t *testing.T, c *client.Client, cond string) {
	t.Helper()
	_, err := c.Expect(ctx, func(*etree.Element) bool { return false })
	var se *client.StreamError
	if !errors.As(err, &se) || se.Condition != cond {
		t.Fatalf("%s ended with %v, want the stream error %s", c.JID(), err, cond)
	}
}

// TestClusterAPISessions: the API of one node lists a user's sessions on
// every node, each with the node holding it, and closes them wherever they
// are (the clients see their streams end); a node that holds sessions but
// does not answer is named unreachable and the others still answer.
func TestClusterAPISessions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two nodes")
	}
	nodes := startCluster(t, fmt.Sprintf("[api]\naddress = \"127.0.0.1:0\"\n[[api.tokens]]\nname = \"backend\"\ntoken = %q\n", apiToken), "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := apiClientFor(t, nodes[0].app, nodes[0].cfg)
	const path = "/api/v1/users/bob@localhost/sessions"
	list := func(want []string, unreachable ...string) {
		t.Helper()
		var got clusterSessions
		e.wantStatus("GET", path, nil, 200, &got)
		if !slices.Equal(got.nodeJIDs(), want) || !slices.Equal(got.Unreachable, unreachable) {
			t.Fatalf("listed %v, unreachable %v; want %v, unreachable %v", got.nodeJIDs(), got.Unreachable, want, unreachable)
		}
	}

	phone := clusterLogin(ctx, t, nodes, nodes[0], "bob@localhost/phone")
	laptop := clusterLogin(ctx, t, nodes, nodes[1], "bob@localhost/laptop")
	tablet := clusterLogin(ctx, t, nodes, nodes[1], "bob@localhost/tablet")
	list([]string{"a bob@localhost/phone", "b bob@localhost/laptop", "b bob@localhost/tablet"})

	// One session, on the other node.
	e.wantStatus("DELETE", path+"/tablet", nil, 204, nil)
	streamEnds(ctx, t, tablet, "policy-violation")
	list([]string{"a bob@localhost/phone", "b bob@localhost/laptop"})

	// All of them, wherever they are.
	e.wantStatus("DELETE", path, nil, 204, nil)
	streamEnds(ctx, t, phone, "policy-violation")
	streamEnds(ctx, t, laptop, "policy-violation")
	list([]string{})
	e.wantError("DELETE", path+"/tablet", nil, 404, api.CodeNoSession)

	// Node b stops answering on its subject (its directory is closed) while
	// it stays live and keeps a session in the table.
	desk := clusterLogin(ctx, t, nodes, nodes[0], "bob@localhost/desk")
	nodes[1].app.cluster.dir.Close()
	clusterLogin(ctx, t, nodes, nodes[1], "bob@localhost/pc")
	list([]string{"a bob@localhost/desk"}, "b")
	var partial clusterSessions
	e.wantStatus("DELETE", path+"/pc", nil, 200, &partial)
	if partial.Closed != 0 || !slices.Equal(partial.Unreachable, []string{"b"}) {
		t.Fatalf("closing bob/pc on a silent node: %+v", partial)
	}
	partial = clusterSessions{}
	e.wantStatus("DELETE", path, nil, 200, &partial)
	if partial.Closed != 1 || !slices.Equal(partial.Unreachable, []string{"b"}) {
		t.Fatalf("closing bob's sessions with node b silent: %+v", partial)
	}
	streamEnds(ctx, t, desk, "policy-violation")
	list([]string{}, "b")
}
