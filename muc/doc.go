// Package muc is the XEP-0045 codec: it decodes the documented subset of
// Multi-User Chat (presence to room/nick, groupchat subjects, mediated
// invitations, muc#owner and muc#admin) into the room core's requests, and
// renders the core's replies and events in XEP-0045's words (occupant
// presences, status codes, subject messages, invitations).
//
// It must never call the store or the archive, decide a room rule or keep
// state between stanzas: which sessions are XEP-0045 occupants is the room
// core's to know.
package muc
