package twiliofake

import "time"

// HoldStatuses makes outbound messages created from now on stay in each status until the
// test calls ReleaseStatus, so it can watch a message move queued → sent → delivered step by
// step without racing the fake's timer.
func (s *Server) HoldStatuses() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.held = true
}

// ReleaseStatus lets the held message sid move to its next status (and post its callback).
func (s *Server) ReleaseStatus(sid string) {
	s.gate(sid) <- struct{}{}
}

// nextStatus is what a message's next status transition waits for.
func (s *Server) nextStatus(sid string) <-chan struct{} {
	s.mu.Lock()
	held := s.faults.held
	s.mu.Unlock()
	if !held {
		ch := make(chan struct{})
		time.AfterFunc(s.opts.StatusDelay, func() { close(ch) })
		return ch
	}
	return s.gate(sid)
}

func (s *Server) gate(sid string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.gates == nil {
		s.faults.gates = map[string]chan struct{}{}
	}
	g, ok := s.faults.gates[sid]
	if !ok {
		// Buffered so a release before the transition waits is not lost.
		g = make(chan struct{}, 4)
		s.faults.gates[sid] = g
	}
	return g
}
