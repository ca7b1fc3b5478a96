package bridge

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
)

// maxRoomExport bounds an export sent into a room; a larger one is for `careline audit export`.
const maxRoomExport = 50 << 20

var cmdAuditExportHelp = commands.HelpMeta{
	Section:     commands.HelpSectionAdmin,
	Args:        "[--since YYYY-MM-DD] [--until YYYY-MM-DD] [--format jsonl|csv]",
	Description: "Export the audit trail into this room as a file (administrators only, in a room of administrators)",
}

// cmdAuditExport writes the audit trail, or a date range of it, into the room as a file,
// encrypted like any other file when the room is, and audits the export. bridgev2 refuses
// anyone but a bridge admin before this runs (RequiresAdmin).
func (c *Connector) cmdAuditExport(ce *commands.Event) {
	log := zerolog.Ctx(ce.Ctx).With().Str("command", "audit-export").Stringer("room_id", ce.OrigRoomID).Logger()
	since, until, format, err := parseExportArgs(ce.Args)
	if err != nil {
		ce.Reply("%v. Usage: `$cmdprefix audit-export %s`", err, cmdAuditExportHelp.Args)
		return
	}
	// The trail names every patient (by id) and every staff member: it goes only where
	// nobody but administrators can read it, never into a patient's room.
	if others, err := c.nonAdminMembers(ce.Ctx, ce.OrigRoomID); err != nil {
		log.Err(err).Msg("Could not list the room's members for an audit export")
		ce.Reply("Could not check who is in this room, so the audit trail was not exported.")
		return
	} else if others > 0 {
		log.Warn().Int("non_admin_members", others).Msg("Audit export refused: the room has members who are not administrators")
		ce.Reply("Not exported: this room has %d member(s) who are not bridge administrators, and the audit trail names every patient and staff member. Run `audit-export` in your management room with the bot.", others)
		return
	}
	if problem, err := c.exportRoomProblem(ce.Ctx, ce.OrigRoomID); err != nil {
		log.Err(err).Msg("Could not read the room's settings for an audit export")
		ce.Reply("Could not check this room's settings, so the audit trail was not exported.")
		return
	} else if problem != "" {
		log.Warn().Str("problem", problem).Msg("Audit export refused: the room is not private enough")
		ce.Reply("Not exported: %s. Run `audit-export` in an encrypted, invite-only room such as your management room with the bot.", problem)
		return
	}
	var buf bytes.Buffer
	n, err := c.Audit.Export(ce.Ctx, &limitedWriter{w: &buf, left: maxRoomExport}, since, until, format)
	if err == nil {
		caption := fmt.Sprintf("Audit trail export: %d entries (%s), %s. It names patients (by id) and staff: keep it as you would the database.",
			n, audit.DescribeRange(since, until), format)
		err = c.sendFile(ce.Ctx, ce, buf.Bytes(), exportFileName(format, time.Now()), exportMIMEType(format), caption)
		if err != nil {
			err = fmt.Errorf("sending the file into the room: %w", err)
		}
	}
	// Recorded after the attempt, so the entry says whether the file reached the room.
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "audit.exported",
		Detail: audit.ExportDetail(format, since, until, n, err == nil) + " into " + ce.OrigRoomID.String()})
	switch {
	case errors.Is(err, errExportTooBig):
		ce.Reply("The export is over %d MB: choose a shorter range with --since and --until, or run `careline audit export` on the server.", maxRoomExport>>20)
	case err != nil:
		log.Err(err).Msg("Audit export into the room failed")
		ce.Reply("Could not export the audit trail: %v", err)
	default:
		log.Info().Int("entries", n).Str("format", format).Msg("Audit trail exported into the room")
	}
}

// nonAdminMembers counts who, besides the bridge bot and bridge administrators, has joined
// or is invited to the room (an invited user reads the history on joining).
func (c *Connector) nonAdminMembers(ctx context.Context, roomID id.RoomID) (int, error) {
	members, err := c.Bridge.Matrix.GetMembers(ctx, roomID)
	if err != nil {
		return 0, err
	}
	others := 0
	for userID, member := range members {
		if member == nil || (member.Membership != event.MembershipJoin && member.Membership != event.MembershipInvite) {
			continue
		}
		if userID == c.Bridge.Bot.GetMXID() || c.Bridge.Config.Permissions.Get(userID).Admin {
			continue
		}
		others++
	}
	return others, nil
}

func exportFileName(format string, now time.Time) string {
	return fmt.Sprintf("careline-audit-%s.%s", now.UTC().Format("20060102-150405"), format)
}

func exportMIMEType(format string) string {
	if format == "csv" {
		return "text/csv"
	}
	return "application/jsonl"
}

// sendFile uploads data as the bridge bot (encrypted when the room is) and posts it with a
// caption: a body different from the file name is a caption in Matrix (spec v1.10).
func (c *Connector) sendFile(ctx context.Context, ce *commands.Event, data []byte, fileName, mimeType, caption string) error {
	mxc, file, err := ce.Bot.UploadMedia(ctx, ce.OrigRoomID, data, fileName, mimeType)
	if err != nil {
		return err
	}
	content := &event.MessageEventContent{
		MsgType: event.MsgFile, Body: caption, FileName: fileName,
		Info: &event.FileInfo{MimeType: mimeType, Size: len(data)},
	}
	if file != nil {
		// bridgev2 puts the URL of an encrypted upload in the file info itself.
		if file.URL == "" {
			file.URL = mxc
		}
		content.File = file
	} else {
		content.URL = mxc
	}
	_, err = ce.Bot.SendMessage(ctx, ce.OrigRoomID, event.EventMessage, &event.Content{Parsed: content}, nil)
	return err
}

// parseExportArgs reads the same options as `careline audit export`.
func parseExportArgs(args []string) (since, until time.Time, format string, err error) {
	fs := flag.NewFlagSet("audit-export", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sinceArg := fs.String("since", "", "")
	untilArg := fs.String("until", "", "")
	fs.StringVar(&format, "format", "jsonl", "")
	if err = fs.Parse(args); err != nil {
		return since, until, "", fmt.Errorf("unknown option (%v)", err)
	} else if fs.NArg() > 0 {
		return since, until, "", fmt.Errorf("unexpected %q", fs.Arg(0))
	}
	if since, until, err = audit.ParseRange(*sinceArg, *untilArg); err != nil {
		return since, until, "", err
	}
	return since, until, format, audit.CheckFormat(format)
}

var errExportTooBig = errors.New("export too big for a room")

// limitedWriter refuses to grow an in-memory export past its limit.
type limitedWriter struct {
	w    io.Writer
	left int
}

func (lw *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > lw.left {
		return 0, errExportTooBig
	}
	lw.left -= len(p)
	return lw.w.Write(p)
}
