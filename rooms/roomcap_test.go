package rooms_test

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// nodes starts n hubs on one embedded store, as n cluster nodes sharing one
// database would run: each has its own room actors and nothing in memory in
// common with the others. Their metrics go to reg.
func nodes(t *testing.T, n int, tweak func(*rooms.Options)) ([]*env, []*prometheus.Registry) {
	t.Helper()
	hosts := []string{"localhost"}
	st := newStore(t, hosts)
	out := make([]*env, n)
	regs := make([]*prometheus.Registry, n)
	for i := range out {
		regs[i] = prometheus.NewRegistry()
		out[i] = newNode(t, boltBacking(st), tweak, nil, rooms.HubOptions{Registerer: regs[i]}, hosts, nil)
	}
	return out, regs
}

// counterSum adds up the counter name over the registries.
func counterSum(t *testing.T, regs []*prometheus.Registry, name string) float64 {
	t.Helper()
	sum := 0.0
	for _, reg := range regs {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// Defect 8, across nodes: the per-node lock made rooms_per_user hold for
// creates through one hub only; hubs on one store each checked the count
// and wrote in two steps, so a burst through several passed the cap.
func TestRoomsPerUserCreatesAcrossNodes(t *testing.T) {
	ns, regs := nodes(t, 3, func(o *rooms.Options) { o.RoomsPerUser = 3; o.CreateRate = 0 })
	const perNode = 20
	sessions := make([]*user, len(ns))
	for i, e := range ns {
		sessions[i] = e.login("alice")
	}
	for i, u := range sessions {
		for j := range perNode {
			iq := client.IQ("set", fmt.Sprintf("burst%d-%d@%s", i, j, svc), query(rooms.NSCreate, ""))
			iq.CreateAttr("id", fmt.Sprintf("c%d-%d", i, j))
			if err := u.Send(tctx(t), iq); err != nil {
				t.Fatal(err)
			}
		}
	}
	ok := 0
	for _, u := range sessions {
		for answered := 0; answered < perNode; {
			el := u.next()
			if el.Tag != "iq" {
				continue // a creation notification
			}
			answered++
			if el.SelectAttrValue("type", "") == "result" {
				ok++
			} else {
				expectError(t, el, "bad-request")
			}
		}
	}
	n, err := ns[0].store.GetUserRoomsCount(tctx(t), xmpp.MustParseJID("alice@localhost"), svc)
	if err != nil {
		t.Fatal(err)
	}
	if ok != 3 || n != 3 {
		t.Fatalf("%d creates succeeded through three nodes, alice is in %d rooms; the cap is 3", ok, n)
	}
	if got := counterSum(t, regs, "muc_light_rooms_per_user_refusals_total"); got != 3*perNode-3 {
		t.Errorf("muc_light_rooms_per_user_refusals_total = %v, want %d", got, 3*perNode-3)
	}
}

// Defect 8, across nodes: three owners on three nodes adding one user at once
// put him over his cap. Additions past it are skipped silently: every owner
// gets a result, and the user ends in exactly as many rooms as the cap.
func TestRoomsPerUserAddsAcrossNodes(t *testing.T) {
	ns, regs := nodes(t, 3, func(o *rooms.Options) { o.RoomsPerUser = 3; o.CreateRate = 0 })
	names := []string{"alice", "bob", "kate"}
	const perOwner = 3 // the owners themselves are at the cap
	owners := make([]*user, len(ns))
	var rs [][]string
	for i, e := range ns {
		owners[i] = e.login(names[i])
		var list []string
		for j := range perOwner {
			list = append(list, createRoom(t, fmt.Sprintf("%s%d", names[i], j), owners[i]))
		}
		rs = append(rs, list)
	}
	for i, o := range owners {
		for _, r := range rs[i] {
			iq := client.IQ("set", r, query(rooms.NSAffiliations, "<user affiliation='member'>mike@localhost</user>"))
			iq.CreateAttr("id", "add-"+r)
			if err := o.Send(tctx(t), iq); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, o := range owners {
		for answered := 0; answered < perOwner; {
			el := o.next()
			if el.Tag != "iq" {
				continue // the change's notification
			}
			answered++
			expectResult(t, el, "")
		}
	}
	n, err := ns[0].store.GetUserRoomsCount(tctx(t), xmpp.MustParseJID("mike@localhost"), svc)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("mike is in %d rooms after %d concurrent additions on three nodes; the cap is 3", n, perOwner*len(owners))
	}
	if got, want := counterSum(t, regs, "muc_light_rooms_per_user_refusals_total"), float64(perOwner*len(owners)-3); got != want {
		t.Errorf("muc_light_rooms_per_user_refusals_total = %v, want %v", got, want)
	}
}
