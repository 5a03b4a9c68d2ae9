package roomstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/wschat/xmppws/xmpp"
)

// This file holds what the two Store and Archive backends (boltstore,
// mongo) share: the stored forms of occupants and blocking items, the
// checks a stored occupant list must pass, and the id window of an archive
// query. The room hub does not use it.

// AffRecord is the stored form of one occupant, the same in both backends:
// the user as canonical bare JID text. The tags are part of both stores'
// formats (bbolt's JSON, MongoDB's documents).
type AffRecord struct {
	JID   string      `json:"jid" bson:"jid"`
	Aff   Affiliation `json:"aff" bson:"aff"`
	Since int64       `json:"since" bson:"since"`
}

// AffRecords returns the stored form of affs, in the same order.
func AffRecords(affs []Aff) []AffRecord {
	out := make([]AffRecord, len(affs))
	for i, a := range affs {
		out[i] = AffRecord{JID: a.User.String(), Aff: a.Aff, Since: a.Since}
	}
	return out
}

// SortAffs returns a bare-JID copy of affs sorted by user JID, the order in
// which the stores keep a room's occupants.
func SortAffs(affs []Aff) []Aff {
	out := make([]Aff, len(affs))
	for i, a := range affs {
		a.User = a.User.Bare()
		out[i] = a
	}
	slices.SortStableFunc(out, func(a, b Aff) int {
		return strings.Compare(a.User.String(), b.User.String())
	})
	return out
}

// CheckAffs enforces what a stored list must be: each user once, each as
// owner or member. sorted must be sorted by user (SortAffs). An empty list
// passes; whether a room may be created without occupants is the caller's
// decision. The error wraps invalid, the calling store's own sentinel.
func CheckAffs(sorted []Aff, invalid error) error {
	for i, a := range sorted {
		if a.User.IsZero() {
			return fmt.Errorf("empty user JID: %w", invalid)
		}
		if a.Aff != Owner && a.Aff != Member {
			return fmt.Errorf("%s has affiliation %q: %w", a.User, a.Aff, invalid)
		}
		if i > 0 && sorted[i-1].User == a.User {
			return fmt.Errorf("%s listed twice: %w", a.User, invalid)
		}
	}
	return nil
}

// SameAffs reports whether two lists sorted by user (SortAffs) hold the same
// (user, affiliation) pairs in the same order; Since does not count, as the
// AffChange contract says. A store uses it to tell a no-op change.
func SameAffs(a, b []Aff) bool {
	return slices.EqualFunc(a, b, func(x, y Aff) bool {
		return x.User == y.User && x.Aff == y.Aff
	})
}

// UnchangedAffs is the AffResult of a change that left the list cur, at
// version, as it was: New is a copy of Old and the version stays.
func UnchangedAffs(cur []Aff, version string) AffResult {
	return AffResult{Old: cur, New: slices.Clone(cur), OldVersion: version, NewVersion: version}
}

// LeaveRooms is the loop of a store's RemoveUser, for a store that changes
// one room at a time: it takes user (bare) out of each room in list with
// modify, the store's ModifyAffUsers that also says whether it wrote,
// applying leave(user) at a fresh version(). Rooms the user has already
// left, or that vanished, by the time their change runs are not reported.
// A failure in one room does not stop the others; each comes back in errs
// as "<store>: remove <user> from <room>: <error>". stopped is true when
// a failure found ctx ended: the loop ends there, and so should RemoveUser,
// leaving the blocking list.
func LeaveRooms(ctx context.Context, store string, user xmpp.JID, list []xmpp.JID, leave func(xmpp.JID) AffChange, version func() string,
	modify func(ctx context.Context, room xmpp.JID, change AffChange, version string) (AffResult, bool, error),
) (out []UserRemoval, errs []error, stopped bool) {
	for _, room := range list {
		res, changed, err := modify(ctx, room, leave(user), version())
		switch {
		case errors.Is(err, ErrRoomNotFound):
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: remove %s from %s: %w", store, user, room, err))
			if ctx.Err() != nil {
				return out, errs, true
			}
			continue
		case !changed:
			continue
		}
		out = append(out, UserRemoval{Room: room, Result: res, Destroyed: len(res.New) == 0})
	}
	return out, errs, false
}

// BlockRecord is the stored form of one blocking item, the same in both
// backends: the JID as canonical bare text. It is comparable, so it can key
// a set. The tags are part of both stores' formats.
type BlockRecord struct {
	Kind BlockKind `json:"kind" bson:"kind"`
	JID  string    `json:"jid" bson:"jid"`
}

// ApplyBlocking returns the list that results from adding deny to items and
// then removing allow (so an item named in both ends up allowed), sorted by
// kind, then JID; nil when nothing is left.
func ApplyBlocking(items []BlockRecord, deny, allow []BlockItem) []BlockRecord {
	set := make(map[BlockRecord]struct{}, len(items)+len(deny))
	for _, it := range items {
		set[it] = struct{}{}
	}
	for _, it := range deny {
		set[BlockRecord{Kind: it.Kind, JID: it.JID.Bare().String()}] = struct{}{}
	}
	for _, it := range allow {
		delete(set, BlockRecord{Kind: it.Kind, JID: it.JID.Bare().String()})
	}
	return slices.SortedFunc(maps.Keys(set), func(a, b BlockRecord) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.JID, b.JID))
	})
}

// Joined lists, sorted, the users of next who are not in cur: the ones a
// write counts against Caps.RoomsPerUser.
func Joined(cur, next []Aff) []xmpp.JID { return missingFrom(next, cur) }

// Left lists, sorted, the users of cur who are not in next: the ones whose
// room count a write brings down.
func Left(cur, next []Aff) []xmpp.JID { return missingFrom(cur, next) }

// missingFrom lists the users of a that b lacks, sorted by JID.
func missingFrom(a, b []Aff) []xmpp.JID {
	in := make(map[xmpp.JID]bool, len(b))
	for _, x := range b {
		in[x.User.Bare()] = true
	}
	var out []xmpp.JID
	for _, x := range a {
		if u := x.User.Bare(); !in[u] {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(x, y xmpp.JID) int { return strings.Compare(x.String(), y.String()) })
	return out
}
