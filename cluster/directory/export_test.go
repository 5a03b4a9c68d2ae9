package directory

import "time"

// SetAskTimeout shortens the wait for a node's answer, so that a test of a
// silent node does not wait the full two seconds.
func SetAskTimeout(d *Directory, t time.Duration) { d.askTimeout = t }
