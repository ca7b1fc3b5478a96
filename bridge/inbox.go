package bridge

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/store"
)

const (
	inboxShards      = 8
	inboxShardBuffer = 1024
	inboxSweepEvery  = 2 * time.Second
)

// inbox moves stored webhooks into their rooms. Messages of one patient go through one shard,
// so they arrive in order; different patients proceed in parallel. A periodic sweep picks up
// whatever a crash, an outage or a full queue left behind.
type inbox struct {
	c        *Connector
	shards   []chan *store.Inbound
	inFlight sync.Map // message SID → struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func newInbox(c *Connector) *inbox {
	log := c.Bridge.Log.With().Str("component", "inbox").Logger()
	ctx, cancel := context.WithCancel(log.WithContext(context.Background()))
	ib := &inbox{c: c, ctx: ctx, cancel: cancel}
	for range inboxShards {
		ib.shards = append(ib.shards, make(chan *store.Inbound, inboxShardBuffer))
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
	ib.cancel()
	ib.wg.Wait()
}

// enqueue hands a stored message to its patient's shard, unless it is already being handled.
// When the shard is full the message waits for the next sweep.
func (ib *inbox) enqueue(in *store.Inbound) {
	if _, busy := ib.inFlight.LoadOrStore(in.MessageSID, struct{}{}); busy {
		return
	}
	h := fnv.New32a()
	h.Write([]byte(in.PatientID))
	select {
	case ib.shards[h.Sum32()%inboxShards] <- in:
	default:
		ib.inFlight.Delete(in.MessageSID)
	}
}

func (ib *inbox) work(shard chan *store.Inbound) {
	defer ib.wg.Done()
	for {
		select {
		case <-ib.ctx.Done():
			return
		case in := <-shard:
			ib.c.deliverInbound(ib.ctx, in)
			ib.inFlight.Delete(in.MessageSID)
		}
	}
}

func (ib *inbox) sweep() {
	defer ib.wg.Done()
	ticker := time.NewTicker(inboxSweepEvery)
	defer ticker.Stop()
	for {
		pending, err := ib.c.Store.PendingInbound(ib.ctx, inboxShards*inboxShardBuffer/2)
		if err != nil && ib.ctx.Err() == nil {
			zerolog.Ctx(ib.ctx).Err(err).Msg("Could not list stored incoming messages; will retry")
		}
		for _, in := range pending {
			ib.enqueue(in)
		}
		select {
		case <-ib.ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
