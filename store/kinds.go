package store

// Channel is how a message travels.
type Channel string

const (
	ChannelSMS    Channel = "sms"    // patient → clinic by SMS, or clinic → patient as plain SMS
	ChannelSecure Channel = "secure" // clinic → patient through a portal link
	ChannelPortal Channel = "portal" // patient → clinic through the portal
)

// MessageStatus is where a message is on its way. Outgoing texts use Twilio's statuses.
type MessageStatus string

const (
	StatusPending     MessageStatus = "pending"  // from the patient, stored, not yet in the room
	StatusReceived    MessageStatus = "received" // from the patient, in the room
	StatusQueued      MessageStatus = "queued"
	StatusAccepted    MessageStatus = "accepted"
	StatusScheduled   MessageStatus = "scheduled"
	StatusSending     MessageStatus = "sending"
	StatusSent        MessageStatus = "sent"
	StatusDelivered   MessageStatus = "delivered"
	StatusRead        MessageStatus = "read"
	StatusUndelivered MessageStatus = "undelivered"
	StatusFailed      MessageStatus = "failed"
	StatusCanceled    MessageStatus = "canceled"
)

// statusRank orders statuses so late or repeated callbacks never move a message back.
var statusRank = map[MessageStatus]int{
	StatusPending: 0, StatusQueued: 1, StatusAccepted: 1, StatusScheduled: 1, StatusSending: 2, StatusSent: 3,
	StatusDelivered: 4, StatusRead: 5, StatusReceived: 5, StatusUndelivered: 6, StatusFailed: 6, StatusCanceled: 6,
}

// Rank orders statuses: a status never replaces one of equal or higher rank.
func (s MessageStatus) Rank() int { return statusRank[s] }

// Failed reports a final failure.
func (s MessageStatus) Failed() bool {
	return s == StatusFailed || s == StatusUndelivered || s == StatusCanceled
}

// OutboxKind is what an outbox text is for.
type OutboxKind string

const (
	KindMessage OutboxKind = "message" // a staff message (plain SMS or secure-link notice)
	KindCode    OutboxKind = "code"    // a portal one-time code: the patient is waiting, so it goes first
	KindHelp    OutboxKind = "help"    // the answer to HELP
)

// OutboxState is where an outbox text is.
type OutboxState string

const (
	OutboxPending OutboxState = "pending"
	OutboxSending OutboxState = "sending" // handed to Twilio; after a crash, reconciled before any resend
	OutboxSent    OutboxState = "sent"
	OutboxFailed  OutboxState = "failed"
)

// InboundState is where a message from a patient is on its way into its room.
type InboundState string

const (
	InboundPending InboundState = "pending"
	InboundBridged InboundState = "bridged"
	InboundFailed  InboundState = "failed" // gave up after the retry period; staff were told
)

// Keyword is a standard SMS keyword a patient texted.
type Keyword string

const (
	KeywordNone   Keyword = ""
	KeywordOptOut Keyword = "optout"
	KeywordOptIn  Keyword = "optin"
	KeywordHelp   Keyword = "help"
)
