package bridge

import "sync"

// inboxLanes picks the shard of each message handed to the inbox. A patient's messages go
// through one shard while any of them is there (handed, not yet in the room or failed), so
// they reach the room in order; a patient with none there goes to the shard holding the
// fewest messages. A fixed hash of the patient measured uneven: with 8 shards the busiest
// carried 10 of 50 texting patients, and its queue was most of the end-to-end tail, while
// other shards sat idle.
type inboxLanes struct {
	mu      sync.Mutex
	patient map[string]*inboxLane
	load    []int // messages each shard holds
	next    int   // where the search for the least busy shard starts, so ties rotate
}

type inboxLane struct {
	shard int
	held  int
}

func newInboxLanes(shards int) *inboxLanes {
	return &inboxLanes{patient: make(map[string]*inboxLane), load: make([]int, shards)}
}

// enter counts one more message of the patient in the inbox and returns its shard.
func (l *inboxLanes) enter(patientID string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	lane := l.patient[patientID]
	if lane == nil {
		lane = &inboxLane{shard: l.leastBusy()}
		l.patient[patientID] = lane
	}
	lane.held++
	l.load[lane.shard]++
	return lane.shard
}

// leave counts one message of the patient out of the inbox (in its room, failed, or not
// taken by its full shard).
func (l *inboxLanes) leave(patientID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lane := l.patient[patientID]
	if lane == nil {
		return
	}
	l.load[lane.shard]--
	if lane.held--; lane.held == 0 {
		delete(l.patient, patientID)
	}
}

func (l *inboxLanes) leastBusy() int {
	best := l.next
	for i := range l.load {
		if s := (l.next + i) % len(l.load); l.load[s] < l.load[best] {
			best = s
		}
	}
	l.next = (best + 1) % len(l.load)
	return best
}
