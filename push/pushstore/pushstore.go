// Package pushstore holds what the stores persist for push notifications
// (XEP-0357): each account's registrations with app servers, and the Store
// interface both backends implement.
//
// It imports nothing of this module but the XMPP vocabulary, so that the
// storage backends need not import the push service. It never decides a
// protocol question (which registration to notify, when): package push does.
package pushstore

import (
	"context"
	"errors"
	"time"

	"github.com/wschat/xmppws/xmpp"
)

// Registration is one enabled push registration: the account that asked, the
// app server and node it named, and the publish-options the client gave
// (its secret, typically), sent back with every notification.
type Registration struct {
	// Account is the user's bare JID.
	Account xmpp.JID
	// JID is the app server (XEP-0357's jid attribute), Node its node.
	JID  xmpp.JID
	Node string
	// Options are the publish-options form's fields without FORM_TYPE, in
	// the order the client gave them.
	Options []Field
	// Created is when the registration was (last) enabled.
	Created time.Time
}

// Field is one data form field of the publish-options.
type Field struct {
	Var   string `json:"var" bson:"var"`
	Value string `json:"value" bson:"value"`
}

// ErrTooMany is returned by EnablePush when a new registration would pass
// the per-account cap; replacing an existing one never does.
var ErrTooMany = errors.New("pushstore: too many push registrations for this account")

// Store persists push registrations per account. Both backends implement
// it; pushstoretest is its contract.
type Store interface {
	// EnablePush stores r, replacing the account's registration with the
	// same JID and node (its options and time change). A new one past max
	// (0: no cap) registrations fails with ErrTooMany, atomically with the
	// count.
	EnablePush(ctx context.Context, r Registration, max int) error
	// DisablePush removes the account's registrations with that app server
	// JID, only the one of node when node is not empty, and returns how many
	// went.
	DisablePush(ctx context.Context, account, jid xmpp.JID, node string) (int, error)
	// PushRegistrations returns the registrations of each account that has
	// any, in the order they were first enabled; one call for many accounts
	// (a room's offline members).
	PushRegistrations(ctx context.Context, accounts []xmpp.JID) (map[xmpp.JID][]Registration, error)
	// DeletePushAccount removes every registration of a deleted account.
	DeletePushAccount(ctx context.Context, account xmpp.JID) error
}

// Apply is the change EnablePush makes to an account's list, shared by the
// backends so that they agree: the same JID and node replaced in place, a
// new one appended unless the list holds max already.
func Apply(list []Registration, r Registration, max int) ([]Registration, error) {
	out := make([]Registration, 0, len(list)+1)
	replaced := false
	for _, x := range list {
		if x.JID == r.JID && x.Node == r.Node {
			out = append(out, r)
			replaced = true
			continue
		}
		out = append(out, x)
	}
	if !replaced {
		if max > 0 && len(list) >= max {
			return list, ErrTooMany
		}
		out = append(out, r)
	}
	return out, nil
}

// Remove is DisablePush's change to a list: what stays and how many went.
func Remove(list []Registration, jid xmpp.JID, node string) ([]Registration, int) {
	var out []Registration
	n := 0
	for _, x := range list {
		if x.JID == jid && (node == "" || x.Node == node) {
			n++
			continue
		}
		out = append(out, x)
	}
	return out, n
}

// Record is the stored form of a registration (both backends write it
// inside one document or value per account).
type Record struct {
	JID     string  `json:"jid" bson:"jid"`
	Node    string  `json:"node" bson:"node"`
	Options []Field `json:"options,omitempty" bson:"options,omitempty"`
	Created int64   `json:"created" bson:"created"` // Unix microseconds
}

// ToRecords converts registrations for storage.
func ToRecords(list []Registration) []Record {
	out := make([]Record, len(list))
	for i, r := range list {
		out[i] = Record{JID: r.JID.String(), Node: r.Node, Options: r.Options, Created: r.Created.UnixMicro()}
	}
	return out
}

// FromRecords converts an account's stored records back.
func FromRecords(account xmpp.JID, recs []Record) ([]Registration, error) {
	out := make([]Registration, 0, len(recs))
	for _, rec := range recs {
		j, err := xmpp.ParseJID(rec.JID)
		if err != nil {
			return nil, err
		}
		out = append(out, Registration{Account: account, JID: j, Node: rec.Node, Options: rec.Options,
			Created: time.UnixMicro(rec.Created).UTC()})
	}
	return out, nil
}
