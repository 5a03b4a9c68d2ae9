package push

import (
	"testing"

	"go.uber.org/goleak"
)

// Every Service the tests start is closed, and Close stops its worker and
// webhook goroutines (a hanging request included: its context ends).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
