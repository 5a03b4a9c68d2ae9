package rooms_test

import (
	"fmt"
	"hash/fnv"
	"os"
	"testing"
	"time"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/cluster/natstest"
	"github.com/wschat/xmppws/cluster/transport"
	"github.com/wschat/xmppws/mongo"
	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/roomhub"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// Three nodes on one store and one embedded NATS server, users spread over
// them: the room's requests cross to its owner's node and its replies and
// events come back, with the semantics of one node (docs/08_cluster.md,
// step 3). Placement here is fixed; leases and liveness come with package
// cluster.

// fixedPlacement is rendezvous hashing over a fixed set of nodes.
type fixedPlacement []string

func (p fixedPlacement) Live() []string { return p }

func (p fixedPlacement) Owner(rm xmpp.JID) string {
	best, bestW := "", uint64(0)
	for _, n := range p {
		h := fnv.New64a()
		h.Write([]byte(n + "\x00" + rm.String()))
		if w := h.Sum64(); best == "" || w > bestW {
			best, bestW = n, w
		}
	}
	return best
}

// clusterEnvs starts the nodes on one embedded store with history on.
func clusterEnvs(t *testing.T, names ...string) []*env {
	t.Helper()
	st := boltBacking(newStore(t, []string{"localhost"}))
	return clusterEnvsOn(t, names, func(string) backing { return st })
}

// mongoClusterEnvs starts the nodes on one MongoDB database (embedded
// FerretDB unless MONGODB_URI is set), each node with its own connection,
// as separate processes would have.
func mongoClusterEnvs(t *testing.T, names ...string) []*env {
	t.Helper()
	uri := mongotest.URI(t)
	db := fmt.Sprintf("cluster%d_%d", os.Getpid(), time.Now().UnixNano())
	open := func() *mongo.Store {
		st, err := mongo.Open(tctx(t), mongo.Config{URI: uri, Database: db, OpTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	first := open()
	for _, u := range []string{"alice", "bob", "kate", "mike", "carol"} {
		rec, _ := account.New(xmpp.MustParseJID(u+"@localhost"), "pw")
		if err := first.CreateAccount(tctx(t), rec); err != nil {
			t.Fatal(err)
		}
	}
	return clusterEnvsOn(t, names, func(string) backing {
		st := open()
		return backing{st, st, st.Archive()}
	})
}

func clusterEnvsOn(t *testing.T, names []string, store func(node string) backing) []*env {
	t.Helper()
	ns := natstest.Start(t)
	place := fixedPlacement(names)
	var out []*env
	for _, name := range names {
		nc := ns.Connect(t)
		ho := rooms.HubOptions{MAM: rooms.MAMOptions{DefaultPageSize: 10, MaxPageSize: 10}, OrderedIDs: true}
		ho.Transport = func(core *roomhub.Hub, edge roomhub.Sink) rooms.Transport {
			tr, err := transport.New(nc, name, place, core, edge, transport.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(tr.Close)
			return tr
		}
		out = append(out, newNode(t, store(name), nil, nil, ho, []string{"localhost"}, nil))
	}
	return out
}

func TestClusterRoomAcrossNodes(t *testing.T) {
	t.Run("embedded store", func(t *testing.T) { roomAcrossNodes(t, clusterEnvs(t, "a", "b", "c")) })
	t.Run("mongodb", func(t *testing.T) { roomAcrossNodes(t, mongoClusterEnvs(t, "a", "b", "c")) })
}

func roomAcrossNodes(t *testing.T, nodes []*env) {
	alice, bob, kate := nodes[0].login("alice"), nodes[1].login("bob"), nodes[2].login("kate")
	// One room per owner, so every node is the owner once and an edge twice.
	place := fixedPlacement{"a", "b", "c"}
	owners := map[string]string{}
	for i := 0; len(owners) < 3 && i < 100; i++ {
		r := xmpp.MustParseJID("r" + string(rune('a'+i%26)) + string(rune('0'+i/26)) + "@" + svc)
		if _, ok := owners[place.Owner(r)]; !ok {
			owners[place.Owner(r)] = r.Local
		}
	}
	for owner, name := range owners {
		t.Run("owned by "+owner, func(t *testing.T) {
			room := createRoom(t, name, alice, bob, kate)
			groupchat(t, room, bob, "from b, owned by "+owner, alice, bob, kate)
			groupchat(t, room, kate, "from c", alice, bob, kate)
			// An affiliation change reaches every node in MUC Light form.
			changeAffs(t, alice, room, "<user affiliation='none'>kate@localhost</user>")
			checkAffsNotif(t, "bob", bob.next(), room, "kate@localhost=none")
			checkAffsNotif(t, "kate", kate.next(), room, "kate@localhost=none")
			// History from another node than the owner's and the poster's.
			page := alice.mam(room, "")
			bodies := map[string]bool{}
			for _, b := range page.bodies {
				bodies[b] = true
			}
			if !bodies["from b, owned by "+owner] || !bodies["from c"] {
				t.Errorf("alice's history (node a) holds %q, want both groupchats", page.bodies)
			}
			// A refusal crosses back too: kate is no longer an occupant.
			res := kate.iq("get", room, query(rooms.NSInfo, ""))
			expectError(t, res, "item-not-found")
		})
	}
	// Each room's actor ran on its owner alone: one loaded room per node.
	for i, n := range []string{"a", "b", "c"} {
		if got := rooms.LoadedRooms(nodes[i].hub); got != 1 {
			t.Errorf("node %s has %d loaded rooms, want 1 (the one it owns)", n, got)
		}
	}
}
