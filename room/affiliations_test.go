package room

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wschat/xmppws/xmpp"
)

func j(s string) xmpp.JID { return xmpp.MustParseJID(s + "@l") }

// room alice=owner (oldest), bob=member (since 2), kate=member (since 1).
func baseRoom() []Aff {
	return []Aff{{User: j("alice"), Aff: Owner, Since: 0}, {User: j("bob"), Aff: Member, Since: 2}, {User: j("kate"), Aff: Member, Since: 1}}
}

func render(list []Aff) string {
	var parts []string
	for _, a := range list {
		parts = append(parts, a.User.Local+"="+string(a.Aff))
	}
	return strings.Join(parts, ",")
}

func items(spec string) []AffItem {
	var out []AffItem
	for _, p := range strings.Split(spec, ",") {
		kv := strings.SplitN(p, "=", 2)
		out = append(out, AffItem{User: j(kv[0]), Aff: Affiliation(kv[1])})
	}
	return out
}

func TestApplyAffChanges(t *testing.T) {
	for _, tc := range []struct {
		name, items, want string
		rules             AffRules
		cur               []Aff
	}{
		{name: "add member", items: "mike=member", want: "alice=owner,bob=member,kate=member,mike=member"},
		{name: "remove member", items: "bob=none", want: "alice=owner,kate=member"},
		{name: "explicit handover", items: "kate=owner", want: "alice=member,bob=member,kate=owner"},
		{name: "explicit change", items: "bob=none,alice=none,kate=owner", want: "kate=owner"},
		{name: "owner leaves: longest-standing member takes over", items: "alice=none", want: "bob=member,kate=owner"},
		{name: "owner demotes self: longest-standing member takes over", items: "bob=none,alice=member", want: "alice=member,kate=owner"},
		{name: "owner demotes self, no other member: stays owner", items: "alice=member,bob=none,kate=none", want: "alice=owner"},
		{name: "owner leaves, only joiners: first joiner owns", items: "alice=none,bob=none,kate=none,zed=member,mike=member", want: "mike=member,zed=owner"},
		{name: "last occupant leaves", items: "alice=none", cur: []Aff{{User: j("alice"), Aff: Owner}}, want: ""},
		{name: "duplicate user", items: "mike=member,mike=none", want: "error: twice"},
		{name: "meaningless member to member", items: "bob=member", want: "error: meaningless"},
		{name: "meaningless removal of a stranger", items: "mike=none", want: "error: meaningless"},
		{name: "two new owners", items: "bob=owner,kate=owner", want: "error: at most one owner"},
		{name: "owner in equal room", items: "bob=owner", rules: AffRules{EqualOccupants: true}, want: "error: no owners"},
		{name: "equal room: leaving promotes nobody", items: "alice=none", rules: AffRules{EqualOccupants: true},
			cur: []Aff{{User: j("alice"), Aff: Member}, {User: j("bob"), Aff: Member}}, want: "bob=member"},
		{name: "max occupants", items: "mike=member", rules: AffRules{MaxOccupants: 3}, want: "error: max_occupants"},
		{name: "max occupants after removal", items: "mike=member,bob=none", rules: AffRules{MaxOccupants: 3}, want: "alice=owner,kate=member,mike=member"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := tc.cur
			if cur == nil {
				cur = baseRoom()
			}
			before := render(cur)
			next, err := ApplyAffChanges(cur, items(tc.items), tc.rules)
			got := render(next)
			if err != nil {
				got = "error: " + err.Error()
				if !strings.HasPrefix(tc.want, "error: ") || !strings.Contains(got, strings.TrimPrefix(tc.want, "error: ")) {
					t.Fatalf("got %s, want %s", got, tc.want)
				}
				if se := xmpp.AsStanzaError(err); se.Condition != xmpp.BadRequest {
					t.Errorf("condition %s, want bad-request", se.Condition)
				}
			} else if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if render(cur) != before {
				t.Error("input list modified")
			}
		})
	}
}

func TestAffDiff(t *testing.T) {
	old := baseRoom()
	next, _ := ApplyAffChanges(old, items("bob=none,alice=member,zed=member"), AffRules{})
	var got []string
	for _, it := range AffDiff(old, next) {
		got = append(got, fmt.Sprintf("%s=%s", it.User.Local, it.Aff))
	}
	if s := strings.Join(got, ","); s != "alice=member,bob=none,kate=owner,zed=member" {
		t.Errorf("diff %s", s)
	}
}
