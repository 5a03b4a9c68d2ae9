package ws

// SetStallHook makes the flow-control tests wait for pacing as an event: f
// runs on the paced session's reader each time it starts to wait.
func SetStallHook(s *Server, f func()) { s.onStall.Store(&f) }
