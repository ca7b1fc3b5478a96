package bridge

import (
	"context"
	"errors"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/phone"
	"github.com/careline/careline/portal"
	"github.com/careline/careline/store"
	"github.com/careline/careline/token"
)

// startPortal sets up the patient portal with careline as its backend.
func (c *Connector) startPortal(ctx context.Context) error {
	pc := c.Config.Portal
	p, err := portal.New(portal.Config{
		PublicURL:       c.Config.PublicURL(),
		HashKey:         token.HashKeyFromSecret(c.Config.Privacy.IdentityKey),
		LinkLifetime:    pc.LinkLifetime,
		CodeLifetime:    pc.CodeLifetime,
		MaxFailures:     pc.MaxFailures,
		ResendCooldown:  pc.ResendCooldown,
		IdleTimeout:     pc.IdleTimeout,
		AbsoluteTimeout: pc.AbsoluteTimeout,
		RequireDOB:      pc.RequireDOB,
		MaxUploadBytes:  pc.MaxUploadBytes,
		MaxCodesPerHour: pc.MaxCodesPerHour,
		MaxCodesPerDay:  pc.MaxCodesPerDay,
	}, c.Bridge.DB.Database, &portalBackend{c: c})
	if err != nil {
		return err
	}
	if err = upgradeSections(ctx, dbSection{"careline_portal", p.Upgrade}); err != nil {
		return err
	}
	c.Web = p
	return nil
}

// codeWait is how long the portal waits for Twilio to take a code before saying it is on its way.
const codeWait = 10 * time.Second

// portalBackend is what the patient portal may ask of careline.
type portalBackend struct{ c *Connector }

var _ portal.Backend = (*portalBackend)(nil)

var errNoPatient = errors.New("no such patient")

func (b *portalBackend) Patient(ctx context.Context, patientID string) (*portal.Patient, error) {
	p, err := b.c.Store.GetPatient(ctx, patientID)
	if err != nil || p == nil {
		return nil, err
	}
	return &portal.Patient{
		ID:          p.ID,
		MaskedPhone: phone.Mask(p.Phone),
		ClinicName:  b.c.Config.ClinicName,
		HasDOB:      p.HasDOB,
	}, nil
}

func (b *portalBackend) Thread(ctx context.Context, patientID string) ([]portal.Message, error) {
	msgs, err := b.c.Store.Thread(ctx, patientID)
	if err != nil {
		return nil, err
	}
	out := make([]portal.Message, 0, len(msgs))
	for _, m := range msgs {
		pm := portal.Message{
			ID:          m.ID,
			FromPatient: m.FromPatient,
			SenderName:  m.SenderName,
			Body:        m.Body,
			SentAt:      m.CreatedAt,
			Withdrawn:   !m.WithdrawnAt.IsZero(),
			Expired:     m.Expired,
			Read:        !m.ReadAt.IsZero(),
		}
		if m.FromPatient {
			switch {
			case m.Status == store.StatusPending:
				pm.State = portal.StateSending
			case m.Status.Failed():
				pm.State = portal.StateFailed
			}
		}
		for _, a := range m.Attachments {
			pm.Attachments = append(pm.Attachments, portal.Attachment{ID: a.ID, FileName: a.FileName, ContentType: a.ContentType, Size: a.Size})
		}
		out = append(out, pm)
	}
	return out, nil
}

// clientFor finds the clinic login a patient belongs to.
func (b *portalBackend) clientFor(ctx context.Context, patientID string) (*Client, *store.Patient, error) {
	p, err := b.c.Store.GetPatient(ctx, patientID)
	if err != nil {
		return nil, nil, err
	} else if p == nil {
		return nil, nil, errNoPatient
	}
	client := b.c.clientForLogin(ctx, networkid.UserLoginID(p.LoginID))
	if client == nil {
		return nil, nil, errors.New("the clinic's Twilio number is not connected")
	}
	return client, p, nil
}

// SendSMS texts the patient a one-time code through the outbox (sharing it fairly with other texts) and
// waits a little for Twilio's answer, so the portal can say whether it went.
func (b *portalBackend) SendSMS(ctx context.Context, patientID, text string) error {
	client, p, err := b.clientFor(ctx, patientID)
	if err != nil {
		return err
	}
	if !p.OptedOutAt.IsZero() {
		return errors.New("the patient has opted out of texts")
	}
	if !b.c.takeCodeBudget(ctx, client) {
		return portal.ErrCodeBudget
	}
	o := &store.Outgoing{PatientID: patientID, Kind: store.KindCode, Body: text}
	if err = client.enqueue(ctx, o); err != nil {
		return err
	}
	client.wakeSender()
	ctx, cancel := context.WithTimeout(ctx, codeWait)
	defer cancel()
	for {
		got, err := b.c.Store.GetOutgoing(ctx, o.Seq)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil // still queued: it goes out as soon as the rate limit allows
		case err != nil:
			return err
		case got.State == store.OutboxSent:
			return nil
		case got.State == store.OutboxFailed:
			return errors.New("the code could not be texted: " + got.LastError)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *portalBackend) Reply(ctx context.Context, patientID, body string) error {
	return b.fromPortal(ctx, patientID, body, nil)
}

func (b *portalBackend) Upload(ctx context.Context, patientID, fileName, contentType string, data []byte) error {
	return b.fromPortal(ctx, patientID, "", []*store.Attachment{{
		ID: newMessageID(), FileName: fileName, ContentType: contentType, Size: int64(len(data)), Data: data,
	}})
}

// fromPortal stores a patient's portal message and hands it to the inbox, which puts it in
// the room as the patient and retries like an SMS; the thread shows the patient its state.
func (b *portalBackend) fromPortal(ctx context.Context, patientID, body string, attachments []*store.Attachment) error {
	client, p, err := b.clientFor(ctx, patientID)
	if err != nil {
		return err
	}
	msg := &store.Message{
		ID:          newMessageID(),
		PatientID:   patientID,
		FromPatient: true,
		Channel:     store.ChannelPortal,
		Body:        body,
		Attachments: attachments,
	}
	// Claimed before it is stored, as a webhook's SMS is (see inbox.claim); the id is new, so
	// the claim holds.
	claimed := b.c.inbox.claim(msg.ID)
	in, err := b.c.Store.SavePortalInbound(ctx, msg, string(client.login.ID))
	if err != nil {
		if claimed {
			b.c.inbox.release(msg.ID)
		}
		return err
	}
	if claimed {
		// Stored with its "sending" mark: the worker hands it to bridgev2 without a commit first.
		b.c.inbox.hand(&inboxItem{in: in, patient: p, client: client, fresh: true})
	}
	return nil
}

func (b *portalBackend) Attachment(ctx context.Context, patientID, attachmentID string) (string, []byte, error) {
	a, err := b.c.Store.GetAttachment(ctx, patientID, attachmentID)
	if err != nil {
		return "", nil, err
	} else if a == nil {
		return "", nil, errors.New("no such attachment")
	}
	return a.ContentType, a.Data, nil
}

// MarkRead sends read receipts from the patient's ghost, so staff see "read".
func (b *portalBackend) MarkRead(ctx context.Context, patientID string, messageIDs []string) error {
	read, err := b.c.Store.MarkRead(ctx, patientID, messageIDs)
	if err != nil || len(read) == 0 {
		return err
	}
	ghost, err := b.c.Bridge.GetGhostByID(ctx, networkid.UserID(patientID))
	if err != nil {
		return err
	}
	last := read[len(read)-1]
	if last.RoomID == "" || last.EventID == "" {
		return nil
	}
	return ghost.Intent.MarkRead(ctx, last.RoomID, last.EventID, time.Now())
}

func (b *portalBackend) CheckDOB(ctx context.Context, patientID string, dob time.Time) (bool, error) {
	return b.c.Store.CheckDOB(ctx, patientID, dob)
}

func (b *portalBackend) NotifyStaff(ctx context.Context, patientID, notice string) error {
	client, p, err := b.clientFor(ctx, patientID)
	if err != nil {
		return err
	}
	pt, err := b.c.Bridge.GetPortalByKey(ctx, portalKey(client.login.ID, p.ID))
	if err != nil {
		return err
	}
	if pt.MXID == "" {
		return errors.New("the patient has no room")
	}
	b.c.sendNotice(ctx, pt, "⚠️ "+notice, "")
	return nil
}

// Audit records what the patient did in the portal (never content) in the audit trail.
func (b *portalBackend) Audit(ctx context.Context, patientID, action string) {
	b.c.countPortalEvent(action)
	b.c.audit(ctx, audit.Entry{Actor: patientActor(patientID), Action: "portal." + action, PatientID: patientID, Channel: string(store.ChannelPortal)})
}
