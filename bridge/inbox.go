package bridge

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/store"
)

const (
	inboxShards      = 8
	inboxShardBuffer = 1024
	inboxSweepEvery  = 2 * time.Second
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
}

// inbox moves stored patient messages (SMS webhooks and portal posts) into their rooms.
// Messages of one patient go through one shard, so they arrive in order; different patients
// proceed in parallel. A periodic sweep picks up whatever a crash, an outage or a full queue
// left behind, and retries failures with backoff until network.twilio.give_up_after.
type inbox struct {
	c        *Connector
	shards   []chan *inboxItem
	inFlight sync.Map // message id → struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

func newInbox(c *Connector) *inbox {
	log := c.Bridge.Log.With().Str("component", "inbox").Logger()
	// Not the bridge's background context: bridgev2 cancels that only after the Matrix side
	// stopped, and the inbox must stop (and finish what it holds) before then.
	ctx, cancel := context.WithCancel(log.WithContext(context.WithoutCancel(c.Bridge.BackgroundCtx)))
	ib := &inbox{c: c, ctx: ctx, cancel: cancel}
	for range inboxShards {
		ib.shards = append(ib.shards, make(chan *inboxItem, inboxShardBuffer))
	}
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
	})
}

// enqueue hands a stored message to its patient's shard, unless it is already being handled.
// When the shard is full the message waits for the next sweep.
func (ib *inbox) enqueue(item *inboxItem) {
	if _, busy := ib.inFlight.LoadOrStore(item.in.MessageID, struct{}{}); busy {
		return
	}
	h := fnv.New32a()
	h.Write([]byte(item.in.PatientID))
	select {
	case ib.shards[h.Sum32()%inboxShards] <- item:
	default:
		ib.inFlight.Delete(item.in.MessageID)
	}
}

func (ib *inbox) work(shard chan *inboxItem) {
	defer ib.wg.Done()
	for {
		select {
		case <-ib.ctx.Done():
			return
		case item := <-shard:
			ib.c.deliverInbound(ib.ctx, item)
			ib.inFlight.Delete(item.in.MessageID)
		}
	}
}

func (ib *inbox) sweep() {
	defer ib.wg.Done()
	ticker := time.NewTicker(inboxSweepEvery)
	defer ticker.Stop()
	for {
		due, err := ib.c.Store.DueInbound(ib.ctx, inboxShards*inboxShardBuffer/2)
		if err != nil && ib.ctx.Err() == nil {
			zerolog.Ctx(ib.ctx).Err(err).Msg("Could not list stored incoming messages; will retry")
		}
		for _, in := range due {
			ib.enqueue(&inboxItem{in: in})
		}
		select {
		case <-ib.ctx.Done():
			return
		case <-ticker.C:
		}
	}
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
