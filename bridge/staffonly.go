package bridge

import (
	"context"
	"strings"
	"time"
	"unicode"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/careline/careline/audit"
)

// staffOnlyPrefix marks a message in the main timeline as a note for staff.
const staffOnlyPrefix = "!note"

// noteMessagePrefix starts the bridgev2 message ID of a staff-only message, so a later
// redaction or relation to it is known not to concern the patient.
const noteMessagePrefix = "note-"

// staffOnlyKind says why a Matrix message stays with staff: "thread", "note" or "" (it goes to
// the patient). bridgev2 v0.31.0 passes thread messages on like any other (it only looks up the
// thread root when the network declares thread support, which careline does not), so careline
// decides here, before anything about the patient is read.
func staffOnlyKind(content *event.MessageEventContent) string {
	if content == nil {
		return ""
	}
	if content.RelatesTo.GetThreadParent() != "" {
		return "thread"
	}
	rest, ok := cutPrefixFold(strings.TrimLeftFunc(content.Body, unicode.IsSpace), staffOnlyPrefix)
	if ok && (rest == "" || unicode.IsSpace([]rune(rest)[0])) {
		return "note"
	}
	return ""
}

// cutPrefixFold is strings.CutPrefix ignoring ASCII case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// keepStaffOnly accepts a staff-only message without sending anything to the patient and
// tells the room so: once per thread, at its first message, and with a reaction on each note.
func (c *Connector) keepStaffOnly(ctx context.Context, msg *bridgev2.MatrixMessage, kind string) *bridgev2.MatrixMessageResponse {
	log := zerolog.Ctx(ctx)
	switch kind {
	case "thread":
		root := msg.Content.RelatesTo.GetThreadParent()
		first, err := c.team.store.FirstInThread(ctx, msg.Portal.MXID.String(), root.String())
		if err != nil {
			log.Err(err).Msg("Could not record the staff-only thread")
		}
		if first {
			content := &event.MessageEventContent{MsgType: event.MsgNotice,
				Body: "🔒 Staff only: nothing written in this thread is sent to the patient (no text, not in the portal)."}
			content.RelatesTo = (&event.RelatesTo{}).SetThread(root, msg.Event.ID)
			if _, err = c.Bridge.Bot.SendMessage(ctx, msg.Portal.MXID, event.EventMessage, &event.Content{Parsed: content}, nil); err != nil {
				log.Err(err).Msg("Could not tell the thread it is staff-only")
			}
		}
	case "note":
		reaction := &event.ReactionEventContent{RelatesTo: event.RelatesTo{
			Type: event.RelAnnotation, EventID: msg.Event.ID, Key: "🔒 staff only, not sent"}}
		if _, err := c.Bridge.Bot.SendMessage(ctx, msg.Portal.MXID, event.EventReaction, &event.Content{Parsed: reaction}, nil); err != nil {
			log.Err(err).Msg("Could not mark the note as staff-only")
		}
	}
	c.audit(ctx, audit.Entry{Actor: msg.Event.Sender.String(), Action: "note.kept", PatientID: string(msg.Portal.ID),
		Detail: "staff-only " + kind + ", not sent to the patient"})
	log.Debug().Str("kind", kind).Msg("Staff-only message kept from the patient")
	return &bridgev2.MatrixMessageResponse{
		DB: &database.Message{ID: networkid.MessageID(noteMessagePrefix + msg.Event.ID.String()), Timestamp: time.Now()},
	}
}

// isStaffOnlyMessage reports whether a bridgev2 message ID belongs to a staff-only message.
func isStaffOnlyMessage(id networkid.MessageID) bool {
	return strings.HasPrefix(string(id), noteMessagePrefix)
}
