// Package mam is the XEP-0313 codec of room history: it decodes archive
// queries (data-form filters, RSM paging, flip-page) into the room core's
// QueryHistory and renders an answered query as result messages and <fin/>.
//
// It must never call the archive or decide who may read a room's history:
// the room core runs the query for occupants only.
package mam
