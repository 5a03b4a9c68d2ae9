package natstest_test

import (
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/wschat/xmppws/cluster/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a testing.TB that keeps failures instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckFailsOnOverlappingOwners(t *testing.T) {
	var log natstest.OwnerLog
	a := log.Start("room1", "a")
	a.Acted()
	b := log.Start("room1", "b") // a acts again after b started: two owners
	a.Acted()
	b.Acted()
	a.End()
	b.End()
	r := &recorder{TB: t}
	log.Check(r)
	if len(r.errs) != 1 {
		t.Fatalf("Check reported %q, want one overlap", r.errs)
	}
}

func TestCheckPassesOnHandOver(t *testing.T) {
	var log natstest.OwnerLog
	a := log.Start("room1", "a")
	a.Acted()
	a.End()
	a.Acted() // after End: not acting
	b := log.Start("room1", "b")
	b.Acted()
	// The same node twice, and another room, overlap freely.
	c := log.Start("room1", "b")
	c.Acted()
	d := log.Start("room2", "a")
	d.Acted()
	b.Acted()
	r := &recorder{TB: t}
	log.Check(r)
	if len(r.errs) != 0 {
		t.Fatalf("Check reported %q on a clean hand-over", r.errs)
	}
}

func TestStartAndConnect(t *testing.T) {
	s := natstest.Start(t)
	nc := s.Connect(t)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}
