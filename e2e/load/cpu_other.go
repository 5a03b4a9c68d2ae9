//go:build !unix

package load

import "time"

// selfCPU is not measured where getrusage does not exist.
func selfCPU() (time.Duration, bool) { return 0, false }
