package account

import (
	"testing"

	"github.com/wschat/xmppws/xmpp"
)

func TestRecordVerify(t *testing.T) {
	r, err := New(xmpp.MustParseJID("alice@localhost"), "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Verify("alice", "s3cret") {
		t.Error("right password refused")
	}
	if r.Verify("alice", "S3cret") {
		t.Error("wrong password accepted")
	}
	for _, m := range []string{SCRAMSHA1, SCRAMSHA256} {
		if _, ok := r.Stored(m); !ok {
			t.Errorf("no stored credentials for %s", m)
		}
	}
	if _, ok := r.Stored("PLAIN"); ok {
		t.Error("stored credentials for PLAIN")
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := New(xmpp.MustParseJID("localhost"), "x"); err == nil {
		t.Error("domain JID accepted as an account")
	}
	if _, err := New(xmpp.MustParseJID("bob@localhost/r"), "x"); err == nil {
		t.Error("full JID accepted as an account")
	}
	if _, err := New(xmpp.MustParseJID("bob@localhost"), ""); err == nil {
		t.Error("empty password accepted")
	}
}
