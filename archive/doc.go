// Package archive is room history as data: the Archive interface both
// backends implement, its messages, queries and pages, the ordered archive
// ids (also the XEP-0359 stanza-ids), and the Writer that batches messages
// into durable writes.
//
// It must never speak XML (an archived stanza is opaque bytes) nor deliver
// anything to anyone: the room core decides what is archived and when it is
// delivered.
package archive
