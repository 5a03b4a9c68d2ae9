// Package push wakes room members who are offline: when a room message is
// delivered and a member has no session anywhere (a session detached for
// resumption counts as online), it publishes a XEP-0357 notification to the
// app servers the member registered, and/or POSTs a signed JSON webhook to
// the application's backend, at most once per member and room within an
// interval.
//
// Its room hook (Service.OnPosted) runs on the room actor's goroutine and
// only enqueues, or drops and counts: push must never slow, block or fail a
// room's fan-out, whatever the app servers or the webhook endpoint do. It
// never decides who is a member (the event's audience says) nor who is
// online (the router and the cluster's session directory say), and never
// logs a webhook secret or a registration's publish-options.
package push
