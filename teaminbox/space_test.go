package teaminbox

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

func TestConversationSpaces(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		conv Conversation
		want []string
	}{
		{"new", Conversation{}, nil},
		{"waiting", Conversation{WaitingSince: t0}, []string{NeedsReply}},
		{"waiting, assigned", Conversation{WaitingSince: t0, Assignee: "@lee:x"}, []string{NeedsReply, "@lee:x"}},
		{"answered, assigned", Conversation{Assignee: "@lee:x"}, []string{"@lee:x"}},
		{"closed, assigned", Conversation{Assignee: "@lee:x", ClosedAt: t0}, nil},
	} {
		if got := tc.conv.Spaces(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: spaces %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestSpaceRecords(t *testing.T) {
	dbtest.ForEach(t, "teaminbox_space", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		if id, err := s.SpaceID(ctx, NeedsReply); err != nil || id != "" {
			t.Fatalf("space before creation: %q %v", id, err)
		}
		if err := s.SaveSpace(ctx, NeedsReply, "!needs"); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveSpace(ctx, "@lee:x", "!lee"); err != nil {
			t.Fatal(err)
		}
		if all, err := s.Spaces(ctx); err != nil || len(all) != 2 || all[NeedsReply] != "!needs" || all["@lee:x"] != "!lee" {
			t.Fatalf("spaces %v %v", all, err)
		}
		_ = s.AddedToSpace(ctx, NeedsReply, "p1", "!r1")
		_ = s.AddedToSpace(ctx, "@lee:x", "p1", "!r1")
		_ = s.AddedToSpace(ctx, NeedsReply, "p2", "!r2")
		_ = s.AddedToSpace(ctx, NeedsReply, "p1", "!r1new") // the patient's room was replaced
		children, err := s.SpaceChildren(ctx, "p1")
		if err != nil || len(children) != 2 || children[0] != (SpaceChild{NeedsReply, "!r1new"}) || children[1] != (SpaceChild{"@lee:x", "!r1"}) {
			t.Fatalf("p1 in spaces %v %v", children, err)
		}
		if err = s.RemovedFromSpace(ctx, NeedsReply, "p1"); err != nil {
			t.Fatal(err)
		}
		if children, _ = s.SpaceChildren(ctx, "p1"); len(children) != 1 || children[0].Owner != "@lee:x" {
			t.Fatalf("p1 after leaving Needs reply: %v", children)
		}
		mustWrite(t, s, "p2", "!r2", time.Now())
		mustWrite(t, s, "p1", "!r1", time.Now())
		if ids, err := s.PatientIDs(ctx); err != nil || !slices.Equal(ids, []string{"p1", "p2"}) {
			t.Fatalf("patient IDs %v %v", ids, err)
		}
	})
}
