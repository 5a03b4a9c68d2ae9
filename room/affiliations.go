package room

import (
	"slices"
	"strings"

	"github.com/wschat/xmppws/xmpp"
)

// AffRules are the room-independent inputs of an affiliation change.
type AffRules struct {
	EqualOccupants bool
	MaxOccupants   int   // 0: unlimited
	Now            int64 // Since for joining users
}

func compareJID(a, b xmpp.JID) int { return strings.Compare(a.String(), b.String()) }

func AffOf(list []Aff, u xmpp.JID) Affiliation {
	for _, a := range list {
		if a.User == u {
			return a.Aff
		}
	}
	return None
}

// ApplyAffChanges computes the list that results from items applied to cur,
// with MUC Light's rules: a user at most once per request; no item that
// changes nothing; at most one owner (promoting a user demotes the old owner
// to member); when the owner goes without a successor, the longest-standing
// remaining member takes over (then a joining member, then an owner that
// demoted itself); no owners in an equal-occupants room; the size cap. It is
// pure, so a store may call it again after a concurrent write.
func ApplyAffChanges(cur []Aff, items []AffItem, r AffRules) ([]Aff, error) {
	seen := make(map[xmpp.JID]bool, len(items))
	for _, it := range items {
		if seen[it.User] {
			return nil, xmpp.NewError(xmpp.BadRequest, "cannot change the affiliation of one user twice in a request")
		}
		seen[it.User] = true
		if AffOf(cur, it.User) == it.Aff {
			return nil, xmpp.NewError(xmpp.BadRequest, "meaningless change: "+it.User.String()+" is already "+string(it.Aff))
		}
		if it.Aff == Owner && r.EqualOccupants {
			return nil, xmpp.NewError(xmpp.BadRequest, "rooms of this service have no owners")
		}
	}
	next := slices.Clone(cur)
	var promoted, joined []xmpp.JID
	for _, it := range items {
		i := slices.IndexFunc(next, func(a Aff) bool { return a.User == it.User })
		switch {
		case it.Aff == None:
			next = slices.Delete(next, i, i+1)
		case i < 0:
			next = append(next, Aff{User: it.User, Aff: it.Aff, Since: r.Now})
			joined = append(joined, it.User)
		default:
			next[i].Aff = it.Aff
		}
		if it.Aff == Owner {
			promoted = append(promoted, it.User)
		}
	}
	if !r.EqualOccupants {
		var err error
		if next, err = settleOwner(cur, next, promoted, joined); err != nil {
			return nil, err
		}
	}
	if r.MaxOccupants > 0 && len(next) > r.MaxOccupants {
		return nil, xmpp.NewError(xmpp.BadRequest, "the room would exceed max_occupants")
	}
	slices.SortFunc(next, func(a, b Aff) int { return compareJID(a.User, b.User) })
	return next, nil
}

// settleOwner restores the one-owner invariant after the items were applied.
func settleOwner(cur, next []Aff, promoted, joined []xmpp.JID) ([]Aff, error) {
	var owners []int
	for i, a := range next {
		if a.Aff == Owner {
			owners = append(owners, i)
		}
	}
	switch {
	case len(promoted) > 1:
		return nil, xmpp.NewError(xmpp.BadRequest, "a room has at most one owner")
	case len(owners) > 1:
		// The new owner replaces the old, who stays as a member.
		for _, i := range owners {
			if !slices.Contains(promoted, next[i].User) {
				next[i].Aff = Member
			}
		}
	case len(owners) == 0 && len(next) > 0:
		next[successor(cur, next, joined)].Aff = Owner
	}
	return next, nil
}

// successor picks the next owner: the longest-standing member who was
// already in the room (ties broken by JID), else the first joining member,
// else a former owner who made themselves a member.
func successor(cur, next []Aff, joined []xmpp.JID) int {
	best := -1
	for i, a := range next {
		if slices.Contains(joined, a.User) || AffOf(cur, a.User) != Member {
			continue
		}
		if best < 0 || a.Since < next[best].Since || (a.Since == next[best].Since && compareJID(a.User, next[best].User) < 0) {
			best = i
		}
	}
	if best >= 0 {
		return best
	}
	for _, u := range joined {
		if i := slices.IndexFunc(next, func(a Aff) bool { return a.User == u }); i >= 0 {
			return i
		}
	}
	return slices.IndexFunc(next, func(a Aff) bool { return AffOf(cur, a.User) == Owner })
}

// AffDiff lists what changed between two lists, sorted by user: each user
// whose affiliation differs, with the new one (None for the departed).
func AffDiff(old, new []Aff) []AffItem {
	var out []AffItem
	for _, a := range new {
		if AffOf(old, a.User) != a.Aff {
			out = append(out, AffItem{User: a.User, Aff: a.Aff})
		}
	}
	for _, a := range old {
		if AffOf(new, a.User) == None {
			out = append(out, AffItem{User: a.User, Aff: None})
		}
	}
	slices.SortFunc(out, func(a, b AffItem) int { return compareJID(a.User, b.User) })
	return out
}

// sameAffs reports whether two lists hold the same users with the same
// affiliations (Since is not compared).
func sameAffs(a, b []Aff) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if AffOf(b, x.User) != x.Aff {
			return false
		}
	}
	return true
}

// UsersOf is an occupant list as change items.
func UsersOf(list []Aff) []AffItem {
	out := make([]AffItem, len(list))
	for i, a := range list {
		out[i] = AffItem{User: a.User, Aff: a.Aff}
	}
	return out
}
