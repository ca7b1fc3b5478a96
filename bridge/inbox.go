package bridge

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/store"
)

const (
	// inboxShards is how many workers bring messages into their rooms on PostgreSQL, a
	// patient's through one while any is in the inbox (inboxLanes); inboxShardsSQLite on
	// SQLite. A message waits behind every earlier message of its shard, of any patient: on
	// SQLite, with 8 (and patients placed by a fixed hash then) the busiest shard's queue was
	// the end-to-end tail (e2e p99 21 vs 13-15 ms at 8 concurrent webhooks, msg/s level). SQLite runs every statement on one
	// connection anyway, so more workers only change who waits; on PostgreSQL each is another
	// backend working at once, and 32 measured fewer msg/s (-2 to -25%) for more CPU.
	inboxShards       = 8
	inboxShardsSQLite = 32
	// inboxQueued is how many messages the shards hold together; more wait for the sweep.
	inboxQueued     = 8192
	inboxSweepEvery = 2 * time.Second
	// inboxBatch is how many waiting messages a shard takes at once, to share one commit
	// before they go to bridgev2. Small: after a crash each message marked as being sent
	// costs a look at its room.
	inboxBatch = 16
	// inboxFinishBatch is how many messages now in their rooms the finisher closes per commit.
	inboxFinishBatch = 256
	// inboxFinishLinger is how long the finisher waits for messages still on their way to
	// their rooms before it commits those it has.
	inboxFinishLinger = 5 * time.Millisecond
	// inboxAckWait bounds how long a webhook's answer waits for its message to reach the
	// room (see inboxItem.inRoom).
	inboxAckWait = time.Second
	// inboxSettle is how long after an interrupted attempt to send a message (a crash, a
	// timeout) careline waits before looking for it in the room: the homeserver may still
	// be storing that request's event. Measured: Dendrite under load answered sends 3 s late.
	inboxSettle = 15 * time.Second
	// inboxAckWaitAbove is how many messages not yet in their rooms the inbox may hold before
	// webhooks wait. A few, so a lone sender's next webhook overlaps the previous message's
	// way to its room; every message beyond them only lengthens the wait of all that follow
	// (4 instead of 16, 8 concurrent webhooks: e2e p99 14-16 -> 10-13 ms on SQLite, 24-38 ->
	// 12-21 ms on PostgreSQL, in 6 of 7 paired runs; 0-2 cost one lone sender 12-45% of msg/s).
	inboxAckWaitAbove = 4
	// inboxMaxBackoff caps the wait between attempts of a message that cannot reach its room.
	// 30 s: after an outage of the homeserver, messages should not wait long once it is back.
	inboxMaxBackoff = 30 * time.Second
)

// inboxItem is a stored message from a patient with what the webhook or portal already
// knows, so the worker does not read it again. patient and client may be nil (a sweep).
type inboxItem struct {
	in      *store.Inbound
	patient *store.Patient
	client  *Client
	// inRoom, when set, is closed once the message is in its room or this attempt failed. A
	// webhook waits for it (at most inboxAckWait) before answering: the durable write is what
	// makes answering safe, the wait is backpressure, so a sender at careline's limit is
	// slowed down instead of a backlog, and with it every message's wait, growing.
	inRoom    chan struct{}
	inRoomSet sync.Once
	// inbox, when set (hand), counts this item among its messages not yet in their room (or
	// failed), and in its patient's lane, until settled.
	inbox *inbox
	// swept: listed by the sweep, which may have read the row just before another attempt
	// closed it; the worker reads it again before acting.
	swept bool
	// reachedRoom: this attempt put the message in its room; a failure after (closing its row)
	// does not hold the patient's later messages back.
	reachedRoom bool
	// fresh: the message was stored with its "sending" mark (and, for an SMS, its message
	// record) on arrival, in this process, and no attempt has handed it to bridgev2 yet.
	// Nothing of it can be in the room, so the worker neither lets a send settle nor checks
	// the room (which reads bridgev2's parts and may ask the homeserver), and has nothing to
	// commit before bridgev2. Kept in memory only: after a restart the mark alone says that a
	// send may have begun, and the room is checked.
	fresh bool
}

// newWaitedItem is an item whose sender waits for it to reach its room (waitInRoom).
func newWaitedItem(in *store.Inbound, patient *store.Patient, client *Client) *inboxItem {
	return &inboxItem{in: in, patient: patient, client: client, inRoom: make(chan struct{})}
}

// settled ends the sender's wait, if any.
func (item *inboxItem) settled() {
	item.inRoomSet.Do(func() {
		if item.inRoom != nil {
			close(item.inRoom)
		}
		if item.inbox != nil {
			item.inbox.unsettled.Add(-1)
			item.inbox.lanes.leave(item.in.PatientID)
		}
	})
}

// waitInRoom waits until the message is in its room, its attempt failed, the inbox stops,
// ctx ends or inboxAckWait passed, whichever is first.
func (ib *inbox) waitInRoom(ctx context.Context, item *inboxItem) {
	if ib.unsettled.Load() <= inboxAckWaitAbove {
		return
	}
	timer := time.NewTimer(inboxAckWait)
	defer timer.Stop()
	select {
	case <-item.inRoom:
	case <-timer.C:
	case <-ctx.Done():
	case <-ib.ctx.Done():
	}
}

// inbox moves stored patient messages (SMS webhooks and portal posts) into their rooms.
// Messages of one patient go through one shard while any of them is there (inboxLanes), so
// they arrive in order; different patients proceed in parallel. One finisher closes the messages of all shards once they are in their
// rooms, many per commit: the audit chain's head is one row, so its entries are appended in
// batches rather than each message waiting for it in turn. A periodic sweep picks up whatever a crash, an outage or a full queue
// left behind, and retries failures with backoff until network.twilio.give_up_after.
type inbox struct {
	c         *Connector
	shards    []chan *inboxItem
	finishing chan *inboundJob
	inFlight  sync.Map // message id → struct{}, until its row is closed or its retry scheduled
	// unsettled: entries of inFlight not yet in their room (nor failed). Webhooks wait while
	// it is high; messages in their room waiting for the finisher's commit do not count.
	unsettled atomic.Int64
	lanes     *inboxLanes
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // shard workers and the sweep
	finished  chan struct{}  // closed when the finisher is done
	stopOnce  sync.Once

	// retrying: per patient, their messages waiting for another attempt after a failure
	// (message id → place in the patient's order). A patient's later messages wait behind
	// them (behind), so the patient's messages reach the room in the order they came; other
	// patients are not held up.
	retryingMu sync.Mutex
	retrying   map[string]map[string]inboxPlace
	// answered: messages marked "sending" whose last attempt in this process left no request
	// to the homeserver in flight (it answered each, or none was made): their next attempt
	// checks the room without letting a send settle first. Lost on a crash, as it must be.
	answered sync.Map // message id → struct{}
	// attempts: when this process last handed each message not yet settled to bridgev2.
	attempts sync.Map // message id → time.Time
	// startedAt: when this inbox was made, after any earlier process ended.
	startedAt time.Time
	// unattempted: fresh messages (inboxItem.fresh) whose attempt ended before handing them to
	// bridgev2 (held by the new-patient limit, behind a retry, media or the room not ready, a
	// full queue): their next attempt in this process is fresh again. Lost on a crash, as it
	// must be.
	unattempted sync.Map // message id → struct{}
}

// inboxPlace is where a message stands in its patient's order: by arrival, then by id (as
// the sweep lists them).
type inboxPlace struct {
	at time.Time
	id string
}

func placeOf(in *store.Inbound) inboxPlace { return inboxPlace{at: in.ReceivedAt, id: in.MessageID} }

func (p inboxPlace) before(q inboxPlace) bool {
	return p.at.UnixMilli() < q.at.UnixMilli() || (p.at.UnixMilli() == q.at.UnixMilli() && p.id < q.id)
}

// retryLater notes a message waiting for its next attempt: its patient's later messages
// wait behind it.
func (ib *inbox) retryLater(in *store.Inbound) {
	ib.retryingMu.Lock()
	defer ib.retryingMu.Unlock()
	if ib.retrying == nil {
		ib.retrying = make(map[string]map[string]inboxPlace)
	}
	if ib.retrying[in.PatientID] == nil {
		ib.retrying[in.PatientID] = make(map[string]inboxPlace)
	}
	ib.retrying[in.PatientID][in.MessageID] = placeOf(in)
}

// settledFor notes a message in its room, given up or closed otherwise: nothing waits behind
// it any more.
func (ib *inbox) settledFor(in *store.Inbound) {
	ib.answered.Delete(in.MessageID)
	ib.attempts.Delete(in.MessageID)
	ib.unattempted.Delete(in.MessageID)
	ib.retryingMu.Lock()
	defer ib.retryingMu.Unlock()
	if waiting := ib.retrying[in.PatientID]; waiting != nil {
		delete(waiting, in.MessageID)
		if len(waiting) == 0 {
			delete(ib.retrying, in.PatientID)
		}
	}
}

// attemptAnswered notes that a message's attempt left no request to the homeserver in flight.
func (ib *inbox) attemptAnswered(in *store.Inbound) { ib.answered.Store(in.MessageID, struct{}{}) }

// wasUnattempted reports whether a message stored as fresh was not handed to bridgev2 by any
// attempt in this process; the caller's attempt is then fresh.
func (ib *inbox) wasUnattempted(in *store.Inbound) bool {
	_, ok := ib.unattempted.LoadAndDelete(in.MessageID)
	return ok
}

// handing notes that an attempt is about to hand a message to bridgev2: from now on a request
// of it may be in flight.
func (ib *inbox) handing(in *store.Inbound) { ib.attempts.Store(in.MessageID, time.Now()) }

// settleUntil is when a message marked "sending" (and not fresh) may be looked for in its
// room: inboxSettle after the last moment a request to send it may have left. That is this
// process's last attempt, unless the homeserver answered it (then at once); with no attempt
// in this process, an earlier process's, which ended before this one started. Not the mark
// itself: an SMS is marked on arrival, and may have waited in the inbox long before it was
// sent.
func (ib *inbox) settleUntil(in *store.Inbound) time.Time {
	if _, answered := ib.answered.LoadAndDelete(in.MessageID); answered {
		return time.Time{}
	}
	if at, ok := ib.attempts.Load(in.MessageID); ok {
		return at.(time.Time).Add(inboxSettle)
	}
	return laterOf(in.SendingAt, ib.startedAt).Add(inboxSettle)
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// behind reports whether an earlier message of the same patient waits for a retry: this one
// must wait for it (the sweep offers it again).
func (ib *inbox) behind(in *store.Inbound) bool {
	ib.retryingMu.Lock()
	defer ib.retryingMu.Unlock()
	me := placeOf(in)
	for id, place := range ib.retrying[in.PatientID] {
		if id != in.MessageID && place.before(me) {
			return true
		}
	}
	return false
}

func newInbox(c *Connector) *inbox {
	log := c.Bridge.Log.With().Str("component", "inbox").Logger()
	// Not the bridge's background context: bridgev2 cancels that only after the Matrix side
	// stopped, and the inbox must stop (and finish what it holds) before then.
	ctx, cancel := context.WithCancel(log.WithContext(context.WithoutCancel(c.Bridge.BackgroundCtx)))
	shards := inboxShards
	if c.Store.DB.Dialect == dbutil.SQLite {
		shards = inboxShardsSQLite
	}
	ib := &inbox{c: c, ctx: ctx, cancel: cancel, finishing: make(chan *inboundJob, shards*inboxBatch), finished: make(chan struct{}),
		startedAt: time.Now(), lanes: newInboxLanes(shards)}
	for range shards {
		ib.shards = append(ib.shards, make(chan *inboxItem, inboxQueued/shards))
	}
	go ib.finisher() // here, not in start: stop waits for it even if start never ran
	return ib
}

func (ib *inbox) start() {
	for _, shard := range ib.shards {
		ib.wg.Add(1)
		go ib.work(shard)
	}
	ib.wg.Add(1)
	go ib.sweep()
}

// stop lets in-flight messages finish; unfinished ones stay stored for the next start.
func (ib *inbox) stop() {
	ib.stopOnce.Do(func() {
		ib.cancel()
		ib.wg.Wait()
		close(ib.finishing)
		<-ib.finished
	})
}

// done forgets a message's turn, once its row is closed or its next attempt scheduled. A
// fresh message still fresh (never handed to bridgev2) stays so for its next attempt.
func (ib *inbox) done(item *inboxItem) {
	item.settled()
	if item.fresh {
		ib.unattempted.Store(item.in.MessageID, struct{}{})
	}
	ib.inFlight.Delete(item.in.MessageID)
}

// enqueue hands a stored message to its patient's shard, unless it is already being handled.
// When the shard is full the message waits for the next sweep.
func (ib *inbox) enqueue(item *inboxItem) {
	if !ib.claim(item.in.MessageID) {
		item.settled()
		return
	}
	ib.hand(item)
}

// claim takes a message's turn before it is stored, so the sweep, listing it as soon as its
// commit is visible, cannot take it first: the webhook (or portal) that stored it knows it
// was never attempted (inboxItem.fresh), the sweep would not. It reports false when the
// message is already being handled. The turn then goes on with hand, or is given back with
// release.
func (ib *inbox) claim(messageID string) bool {
	_, busy := ib.inFlight.LoadOrStore(messageID, struct{}{})
	return !busy
}

// release gives back a turn claimed for a message that was not stored as new.
func (ib *inbox) release(messageID string) { ib.inFlight.Delete(messageID) }

// hand gives a message whose turn is claimed to its patient's shard.
func (ib *inbox) hand(item *inboxItem) {
	ib.unsettled.Add(1)
	item.inbox = ib
	select {
	case ib.shards[ib.lanes.enter(item.in.PatientID)] <- item:
	default:
		ib.done(item)
	}
}

func (ib *inbox) work(shard chan *inboxItem) {
	defer ib.wg.Done()
	for {
		select {
		case <-ib.ctx.Done():
			return
		case item := <-shard:
			// Whatever else already waits shares the commits of this one.
			batch := []*inboxItem{item}
			for len(batch) < inboxBatch && len(shard) > 0 {
				batch = append(batch, <-shard)
			}
			ib.c.deliverInbound(ib.ctx, batch)
		}
	}
}

// finish hands a message now in its room to the finisher. While stopping it is left for
// the next start, which finds it in the room and finishes it then.
func (ib *inbox) finish(job *inboundJob) {
	select {
	case ib.finishing <- job:
	case <-ib.ctx.Done():
		ib.done(job.inboxItem)
	}
}

// finisher closes the rows of messages now in their rooms, many per commit: while other
// messages are still on their way to their rooms it waits for them, at most
// inboxFinishLinger, so they share the commit (each commit is a write of every page it
// touches; nobody waits for this one: the webhook was answered and the message is in its
// room). It outlives the shards' context: what they handed over is finished also while
// stopping.
func (ib *inbox) finisher() {
	defer close(ib.finished)
	ctx := context.WithoutCancel(ib.ctx)
	linger := time.NewTimer(inboxFinishLinger)
	for job := range ib.finishing {
		jobs := []*inboundJob{job}
		linger.Reset(inboxFinishLinger)
	collect:
		for len(jobs) < inboxFinishBatch {
			if len(ib.finishing) == 0 && ib.unsettled.Load() == 0 {
				break // nothing more on its way
			}
			select {
			case next, ok := <-ib.finishing:
				if !ok {
					break collect
				}
				jobs = append(jobs, next)
			case <-linger.C:
				break collect
			}
		}
		linger.Stop()
		ib.c.finishAll(ctx, jobs)
		for _, job := range jobs {
			ib.done(job.inboxItem)
		}
	}
}

func (ib *inbox) sweep() {
	defer ib.wg.Done()
	ticker := time.NewTicker(inboxSweepEvery)
	defer ticker.Stop()
	for !ib.loadRetrying() {
		select {
		case <-ib.ctx.Done():
			return
		case <-ticker.C:
		}
	}
	for {
		due, err := ib.c.Store.DueInbound(ib.ctx, inboxQueued/2)
		if err != nil && ib.ctx.Err() == nil {
			zerolog.Ctx(ib.ctx).Err(err).Msg("Could not list stored incoming messages; will retry")
		}
		for _, in := range due {
			ib.enqueue(&inboxItem{in: in, swept: true})
		}
		select {
		case <-ib.ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// loadRetrying notes the messages that were waiting for a retry before a restart, before the
// first sweep: they keep their patients' later messages (due earlier) behind them.
func (ib *inbox) loadRetrying() bool {
	retrying, err := ib.c.Store.RetryingInbound(ib.ctx)
	if err != nil {
		if ib.ctx.Err() == nil {
			zerolog.Ctx(ib.ctx).Err(err).Msg("Could not list incoming messages waiting for a retry; will try again")
		}
		return false
	}
	for _, in := range retrying {
		ib.retryLater(in)
	}
	return true
}

// inboxBackoff is the wait before attempt n+1 of an incoming message: exponential from the
// sweep interval, capped, with jitter so messages held by one outage do not all retry at once.
func inboxBackoff(attempt int) time.Duration {
	d := inboxMaxBackoff
	if attempt < 20 {
		d = min(inboxSweepEvery<<max(attempt-1, 0), inboxMaxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}
