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

	"github.com/careline/careline/audit"
)

// maxRoomExport bounds an export sent into a room; a larger one is for `careline audit export`.
const maxRoomExport = 50 << 20

var cmdAuditExportHelp = commands.HelpMeta{
	Section:     commands.HelpSectionAdmin,
	Args:        "[--since YYYY-MM-DD] [--until YYYY-MM-DD] [--format jsonl|csv]",
	Description: "Export the audit trail into this room as a file (administrators only)",
}

// cmdAuditExport writes the audit trail, or a date range of it, into the room as a file:
// encrypted like any other file when the room is. The export is itself audited.
func (c *Connector) cmdAuditExport(ce *commands.Event) {
	since, until, format, err := parseExportArgs(ce.Args)
	if err != nil {
		ce.Reply("%v. Usage: `$cmdprefix audit-export %s`", err, cmdAuditExportHelp.Args)
		return
	}
	var buf bytes.Buffer
	n, err := c.Audit.Export(ce.Ctx, &limitedWriter{w: &buf, left: maxRoomExport}, since, until, format)
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "audit.export",
		Detail: audit.ExportDetail(format, since, until, n, err == nil) + " into " + ce.RoomID.String()})
	if errors.Is(err, errExportTooBig) {
		ce.Reply("The export is over %d MB: choose a shorter range with --since and --until, or run `careline audit export` on the server.", maxRoomExport>>20)
		return
	} else if err != nil {
		ce.Reply("Could not export the audit trail: %v", err)
		return
	}
	fileName := fmt.Sprintf("careline-audit-%s.%s", time.Now().UTC().Format("20060102-150405"), format)
	mimeType := "application/jsonl"
	if format == "csv" {
		mimeType = "text/csv"
	}
	if err = c.sendFile(ce.Ctx, ce, buf.Bytes(), fileName, mimeType); err != nil {
		zerolog.Ctx(ce.Ctx).Err(err).Msg("Could not send the audit export into the room")
		ce.Reply("Could not send the export into this room: %v", err)
		return
	}
	ce.Reply("Audit trail export: %d entries, from %s to %s. It names patients (by id) and staff: keep it as you would the database.",
		n, audit.FormatBound(since), audit.FormatBound(until))
}

func (c *Connector) sendFile(ctx context.Context, ce *commands.Event, data []byte, fileName, mimeType string) error {
	mxc, file, err := ce.Bot.UploadMedia(ctx, ce.RoomID, data, fileName, mimeType)
	if err != nil {
		return err
	}
	content := &event.MessageEventContent{
		MsgType: event.MsgFile, Body: fileName, FileName: fileName,
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
	_, err = ce.Bot.SendMessage(ctx, ce.RoomID, event.EventMessage, &event.Content{Parsed: content}, nil)
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
	if since, err = audit.ParseBound(*sinceArg, false); err != nil {
		return since, until, "", fmt.Errorf("--since: %w", err)
	}
	if until, err = audit.ParseBound(*untilArg, true); err != nil {
		return since, until, "", fmt.Errorf("--until: %w", err)
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return since, until, "", errors.New("--since must be before --until")
	}
	if format != "jsonl" && format != "csv" {
		return since, until, "", fmt.Errorf("unknown --format %q: use jsonl or csv", format)
	}
	return since, until, format, nil
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
