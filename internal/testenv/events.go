package testenv

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Message is an m.room.message the staff client saw, after decryption.
type Message struct {
	RoomID    id.RoomID
	Sender    id.UserID
	EventID   id.EventID
	Body      string
	MsgType   event.MessageType
	Encrypted bool // arrived as m.room.encrypted and was decrypted
	Notice    bool // MsgType is m.notice (bridge status and error messages)
	Content   *event.MessageEventContent
	Event     *event.Event
}

// Receipt is one receipt from an m.receipt event.
type Receipt struct {
	RoomID  id.RoomID
	EventID id.EventID
	UserID  id.UserID
	Type    event.ReceiptType
}

// DecryptError is a room event the client could not decrypt, even after waiting for its keys.
type DecryptError struct {
	Event *event.Event
	Err   error
}

// recorder keeps everything the sync loop delivers and wakes up waiters. Waiters scan from the
// start, so a wait that begins after the event arrived still sees it.
type recorder struct {
	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	events    []*event.Event
	messages  []Message
	seen      map[id.EventID]bool
	receipts  []Receipt
	invites   []id.RoomID
	inviteIdx int // next invite WaitForInvite returns
	failures  []DecryptError
	autoJoin  bool
	joined    map[id.RoomID]bool
	join      func(id.RoomID)
}

func newRecorder() recorder {
	return recorder{changed: make(chan struct{}), seen: map[id.EventID]bool{}, joined: map[id.RoomID]bool{}}
}

// notifyLocked wakes every waiter; r.mu must be held.
func (r *recorder) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) onEvent(self id.UserID) func(context.Context, *event.Event) {
	return func(_ context.Context, evt *event.Event) {
		if evt.RoomID == "" { // to-device, presence, global account data
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events = append(r.events, evt)
		switch evt.Type.Type {
		case event.EventMessage.Type:
			if evt.Type.Class == event.MessageEventType && !r.seen[evt.ID] {
				r.seen[evt.ID] = true
				r.addMessage(evt)
			}
		case event.StateMember.Type:
			if evt.GetStateKey() == self.String() && evt.Content.AsMember().Membership == event.MembershipInvite &&
				!slices.Contains(r.invites, evt.RoomID) {
				r.invites = append(r.invites, evt.RoomID)
				r.maybeJoinLocked(evt.RoomID)
			}
		case event.EphemeralEventReceipt.Type:
			if content, ok := evt.Content.Parsed.(*event.ReceiptEventContent); ok {
				for eventID, byType := range *content {
					for receiptType, users := range byType {
						for userID := range users {
							r.receipts = append(r.receipts, Receipt{evt.RoomID, eventID, userID, receiptType})
						}
					}
				}
			}
		}
		r.notifyLocked()
	}
}

func (r *recorder) addMessage(evt *event.Event) {
	content, _ := evt.Content.Parsed.(*event.MessageEventContent)
	if content == nil {
		content = &event.MessageEventContent{}
	}
	r.messages = append(r.messages, Message{
		RoomID:    evt.RoomID,
		Sender:    evt.Sender,
		EventID:   evt.ID,
		Body:      content.Body,
		MsgType:   content.MsgType,
		Encrypted: evt.Mautrix.WasEncrypted || evt.Mautrix.EventSource&event.SourceDecrypted != 0,
		Notice:    content.MsgType == event.MsgNotice,
		Content:   content,
		Event:     evt,
	})
}

func (r *recorder) maybeJoinLocked(roomID id.RoomID) {
	if r.autoJoin && !r.joined[roomID] && r.join != nil {
		r.joined[roomID] = true
		go r.join(roomID)
	}
}

func (r *recorder) setAutoJoin() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.autoJoin = true
	for _, roomID := range r.invites {
		r.maybeJoinLocked(roomID)
	}
}

func (r *recorder) decryptFailed(evt *event.Event, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, DecryptError{Event: evt, Err: err})
	r.notifyLocked()
}

// wait calls check under the lock until it returns true or ctx ends.
func (r *recorder) wait(ctx context.Context, what string, check func() bool) error {
	for {
		r.mu.Lock()
		if check() {
			r.mu.Unlock()
			return nil
		}
		ch := r.changed
		nEvents, nMsgs, nFail := len(r.events), len(r.messages), len(r.failures)
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s (saw %d room events, %d messages, %d undecryptable): %w",
				what, nEvents, nMsgs, nFail, ctx.Err())
		}
	}
}

// WaitForMessage returns the first message seen (since the client started) that match accepts.
func (c *StaffClient) WaitForMessage(ctx context.Context, match func(Message) bool) (Message, error) {
	var found Message
	err := c.rec.wait(ctx, "message", func() bool {
		for _, m := range c.rec.messages {
			if match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found, err
}

// Messages returns a copy of every message seen so far, in arrival order.
func (c *StaffClient) Messages() []Message {
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	return slices.Clone(c.rec.messages)
}

// WaitForInvite returns the next room the client was invited to that no earlier call returned.
func (c *StaffClient) WaitForInvite(ctx context.Context) (id.RoomID, error) {
	var roomID id.RoomID
	err := c.rec.wait(ctx, "invite", func() bool {
		if c.rec.inviteIdx < len(c.rec.invites) {
			roomID = c.rec.invites[c.rec.inviteIdx]
			c.rec.inviteIdx++
			return true
		}
		return false
	})
	return roomID, err
}

// WaitForJoin waits until the client's own membership in roomID is join (e.g. after AutoJoinInvites).
func (c *StaffClient) WaitForJoin(ctx context.Context, roomID id.RoomID) error {
	_, err := c.WaitForEvent(ctx, func(evt *event.Event) bool {
		return evt.RoomID == roomID && evt.Type == event.StateMember && evt.GetStateKey() == c.UserID.String() &&
			evt.Content.AsMember().Membership == event.MembershipJoin
	})
	return err
}

// WaitForReceipt waits for an m.read receipt on eventID in roomID by anyone but this client and
// returns who sent it.
func (c *StaffClient) WaitForReceipt(ctx context.Context, roomID id.RoomID, eventID id.EventID) (id.UserID, error) {
	var user id.UserID
	err := c.rec.wait(ctx, "read receipt", func() bool {
		for _, rc := range c.rec.receipts {
			if rc.RoomID == roomID && rc.EventID == eventID && rc.Type == event.ReceiptTypeRead && rc.UserID != c.UserID {
				user = rc.UserID
				return true
			}
		}
		return false
	})
	return user, err
}

// Receipts returns a copy of every receipt seen so far.
func (c *StaffClient) Receipts() []Receipt {
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	return slices.Clone(c.rec.receipts)
}

// WaitForEvent returns the first room event (timeline, state, ephemeral; decrypted events
// appear after their m.room.encrypted original) that match accepts, e.g. m.bridge state or
// com.beeper.message_send_status. Do not modify the event.
func (c *StaffClient) WaitForEvent(ctx context.Context, match func(*event.Event) bool) (*event.Event, error) {
	var found *event.Event
	err := c.rec.wait(ctx, "event", func() bool {
		for _, evt := range c.rec.events {
			if match(evt) {
				found = evt
				return true
			}
		}
		return false
	})
	return found, err
}

// Events returns every room event seen so far.
func (c *StaffClient) Events() []*event.Event {
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	return slices.Clone(c.rec.events)
}

// DecryptErrors returns the events the client gave up decrypting.
func (c *StaffClient) DecryptErrors() []DecryptError {
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	return slices.Clone(c.rec.failures)
}
