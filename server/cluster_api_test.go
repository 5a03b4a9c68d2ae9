package main

import (
	"context"
	"testing"
	"time"

	"github.com/wschat/xmppws/api"
)

// TestClusterAPI: the admin API of a node that does not own a room still
// creates it, posts to it and reads its history: the requests go to the
// owner's node and the answers come back, and occupants on both nodes are
// told.
func TestClusterAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two nodes")
	}
	nodes := startCluster(t, "[api]\naddress = '127.0.0.1:0'\n[[api.tokens]]\nname = 'backend'\ntoken = '"+apiToken+"'\n", "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := clusterLogin(ctx, t, nodes, nodes[0], "alice@localhost/a")
	bob := clusterLogin(ctx, t, nodes, nodes[1], "bob@localhost/b")
	byName := map[string]*testNode{"a": nodes[0], "b": nodes[1]}
	for owner, rm := range roomsOwnedBy(nodes) {
		other := nodes[0]
		if owner == "a" {
			other = nodes[1]
		}
		t.Run("room owned by "+owner+", API of "+other.name, func(t *testing.T) {
			e := apiClientFor(t, other.app, other.cfg)
			local := rm[:len(rm)-len("@muclight.localhost")]
			var c api.Created
			e.wantStatus("POST", "/api/v1/rooms", map[string]any{"room": local, "name": "N", "owner": "alice@localhost",
				"members": []string{"bob@localhost"}}, 201, &c)
			affNotice(t, bob, rm, "bob@localhost", "member")
			affNotice(t, alice, rm, "alice@localhost", "owner")
			var p api.Posted
			e.wantStatus("POST", "/api/v1/rooms/"+rm+"/messages", map[string]string{"body": "from " + other.name}, 201, &p)
			groupchat(t, alice, rm, "from "+other.name)
			groupchat(t, bob, rm, "from "+other.name)
			var msgs []api.Message
			e2 := apiClientFor(t, byName[owner].app, byName[owner].cfg)
			e2.wantStatus("GET", "/api/v1/rooms/"+rm+"/messages", nil, 200, &msgs)
			if len(msgs) == 0 || msgs[len(msgs)-1].ID != p.ID || msgs[len(msgs)-1].From != rm {
				t.Fatalf("history on the owner's node: %+v, posted %s", msgs, p.ID)
			}
			var r api.Room
			e.wantStatus("GET", "/api/v1/rooms/"+rm, nil, 200, &r)
			if len(r.Members) != 2 {
				t.Fatalf("room %+v", r)
			}
		})
	}
}
