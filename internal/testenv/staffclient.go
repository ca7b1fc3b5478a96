package testenv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/crypto/cryptohelper"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// StaffClient is a logged-in care-team member with its own E2EE device, syncing in the
// background and recording what it sees (see events.go).
type StaffClient struct {
	Client   *mautrix.Client
	UserID   id.UserID
	DeviceID id.DeviceID
	Password string
	Crypto   *cryptohelper.CryptoHelper

	log      zerolog.Logger
	cancel   context.CancelFunc
	syncDone chan struct{}
	closed   sync.Once

	sendMu      sync.Mutex
	sentMembers map[id.RoomID]string // member list each room's Megolm session was shared with

	rec recorder
}

// NewStaffClient registers localpart with a random password, then logs in as a new E2EE device.
func (hs *Homeserver) NewStaffClient(ctx context.Context, localpart string) (*StaffClient, error) {
	password := randomHex(16)
	if _, _, err := hs.RegisterUser(ctx, localpart, password); err != nil {
		return nil, err
	}
	return hs.LoginStaffClient(ctx, localpart, password)
}

// LoginStaffClient logs an existing account in as a new E2EE device and starts syncing.
func (hs *Homeserver) LoginStaffClient(ctx context.Context, localpart, password string) (*StaffClient, error) {
	cli, err := mautrix.NewClient(hs.URL, "", "")
	if err != nil {
		return nil, err
	}
	log := hs.Log.With().Str("staff", localpart).Logger()
	cli.Log = log
	cli.Syncer = &retrySyncer{DefaultSyncer: mautrix.NewDefaultSyncer()}
	_, err = cli.Login(ctx, &mautrix.ReqLogin{
		Type:                     mautrix.AuthTypePassword,
		Identifier:               mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: localpart},
		Password:                 password,
		InitialDeviceDisplayName: "careline testenv",
		StoreCredentials:         true,
	})
	if err != nil {
		return nil, fmt.Errorf("logging in %s: %w", localpart, err)
	}
	c := &StaffClient{
		Client:      cli,
		UserID:      cli.UserID,
		DeviceID:    cli.DeviceID,
		Password:    password,
		log:         log,
		sentMembers: map[id.RoomID]string{},
		rec:         newRecorder(),
	}
	c.rec.join = c.joinInvited

	// Each client gets its own SQLite crypto and state store: cli.StateStore stays nil so the
	// helper creates an SQL state store and feeds it from /sync, which is what tells the client
	// a room is encrypted and whom to share Megolm keys with.
	cryptoDir, err := os.MkdirTemp(hs.Dir, "staff-"+localpart+"-")
	if err != nil {
		return nil, err
	}
	pickleKey := make([]byte, 32)
	_, _ = rand.Read(pickleKey)
	helper, err := cryptohelper.NewCryptoHelper(cli, pickleKey, filepath.Join(cryptoDir, "crypto.db"))
	if err != nil {
		return nil, err
	}
	helper.DecryptErrorCallback = c.rec.decryptFailed
	if err = helper.Init(ctx); err != nil {
		_ = helper.Close()
		return nil, fmt.Errorf("initialising crypto for %s: %w", localpart, err)
	}
	cli.Crypto = helper
	c.Crypto = helper
	// Registered after Init so the state store has seen an event before our handler reacts to it.
	cli.Syncer.(mautrix.ExtensibleSyncer).OnEvent(c.rec.onEvent(cli.UserID))

	syncCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.syncDone = make(chan struct{})
	go func() {
		defer close(c.syncDone)
		if err := cli.SyncWithContext(syncCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn().Err(err).Msg("Staff client sync stopped")
		}
	}()
	return c, nil
}

// Close stops syncing and closes the crypto store. Safe to call twice.
func (c *StaffClient) Close() {
	c.closed.Do(func() {
		c.cancel()
		c.Client.StopSync()
		select {
		case <-c.syncDone:
		case <-time.After(10 * time.Second):
			c.log.Warn().Msg("Staff client sync did not stop in time")
		}
		_ = c.Crypto.Close()
	})
}

// retrySyncer retries failed syncs after half a second instead of mautrix's 10 s, so clients
// catch up quickly after Homeserver.Restart.
type retrySyncer struct {
	*mautrix.DefaultSyncer
}

func (s *retrySyncer) OnFailedSync(res *mautrix.RespSync, err error) (time.Duration, error) {
	if errors.Is(err, mautrix.MUnknownToken) {
		return 0, err
	}
	return 500 * time.Millisecond, nil
}

// AutoJoinInvites makes the client join every room it is invited to, including invites already
// received. Enable it before the bridge creates rooms: members who join after the first
// encrypted event never get that event's Megolm session.
func (c *StaffClient) AutoJoinInvites() {
	c.rec.setAutoJoin()
}

func (c *StaffClient) joinInvited(roomID id.RoomID) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for attempt := 0; ; attempt++ {
		_, err := c.Client.JoinRoomByID(ctx, roomID)
		if err == nil {
			return
		}
		if attempt >= 5 || ctx.Err() != nil {
			c.log.Warn().Err(err).Stringer("room_id", roomID).Msg("Auto-join failed")
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// JoinedRooms asks the server which rooms the client has joined.
func (c *StaffClient) JoinedRooms(ctx context.Context) ([]id.RoomID, error) {
	resp, err := c.Client.JoinedRooms(ctx)
	if err != nil {
		return nil, err
	}
	return resp.JoinedRooms, nil
}

// CreateEncryptedRoom creates a private room with m.room.encryption (Megolm) in its initial
// state, like the bridge's portals, and invites the given users.
func (c *StaffClient) CreateEncryptedRoom(ctx context.Context, name string, invite ...id.UserID) (id.RoomID, error) {
	resp, err := c.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat",
		Name:   name,
		Invite: invite,
		InitialState: []*event.Event{{
			Type:    event.StateEncryption,
			Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}},
		}},
	})
	if err != nil {
		return "", err
	}
	return resp.RoomID, nil
}

// SendText sends an m.text message, encrypted when the room is encrypted.
func (c *StaffClient) SendText(ctx context.Context, roomID id.RoomID, text string) (id.EventID, error) {
	return c.SendMessage(ctx, roomID, &event.MessageEventContent{MsgType: event.MsgText, Body: text})
}

// SendMessage sends any m.room.message content, encrypted when the room is encrypted.
func (c *StaffClient) SendMessage(ctx context.Context, roomID id.RoomID, content *event.MessageEventContent) (id.EventID, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if err := c.refreshRoom(ctx, roomID); err != nil {
		return "", err
	}
	resp, err := c.Client.SendMessageEvent(ctx, roomID, event.EventMessage, content)
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

// refreshRoom reloads the room's state into the state store before sending. Sync may lag
// behind what just happened (the bridge or a ghost joined a second ago); without this the
// client could send in plaintext, or encrypt with a Megolm session the newcomer never got.
func (c *StaffClient) refreshRoom(ctx context.Context, roomID id.RoomID) error {
	if _, err := c.Client.State(ctx, roomID); err != nil {
		return fmt.Errorf("fetching state of %s: %w", roomID, err)
	}
	members, err := c.Client.StateStore.GetRoomJoinedOrInvitedMembers(ctx, roomID)
	if err != nil {
		return err
	}
	list := make([]string, len(members))
	for i, m := range members {
		list[i] = m.String()
	}
	slices.Sort(list)
	key := strings.Join(list, ",")
	if prev, ok := c.sentMembers[roomID]; ok && prev != key {
		// Start a new Megolm session so it is shared with everyone now in the room.
		if err = c.Crypto.Machine().CryptoStore.RemoveOutboundGroupSession(ctx, roomID); err != nil {
			return err
		}
	}
	c.sentMembers[roomID] = key
	return nil
}

// SendMedia uploads data (encrypted as an attachment when the room is encrypted) and sends it
// as msgType (event.MsgImage, event.MsgFile, ...).
func (c *StaffClient) SendMedia(ctx context.Context, roomID id.RoomID, msgType event.MessageType, data []byte, mimeType, fileName string) (id.EventID, error) {
	encrypted, err := c.Client.StateStore.IsEncrypted(ctx, roomID)
	if err != nil {
		return "", err
	}
	if !encrypted { // the store may not know the room yet
		if _, err = c.Client.State(ctx, roomID); err != nil {
			return "", err
		}
		if encrypted, err = c.Client.StateStore.IsEncrypted(ctx, roomID); err != nil {
			return "", err
		}
	}
	content := &event.MessageEventContent{
		MsgType:  msgType,
		Body:     fileName,
		FileName: fileName,
		Info:     &event.FileInfo{MimeType: mimeType, Size: len(data)},
	}
	upload := data
	uploadType := mimeType
	var file *attachment.EncryptedFile
	if encrypted {
		file = attachment.NewEncryptedFile()
		upload = slices.Clone(data)
		file.EncryptInPlace(upload)
		uploadType = "application/octet-stream"
	}
	resp, err := c.Client.UploadBytes(ctx, upload, uploadType)
	if err != nil {
		return "", fmt.Errorf("uploading %s: %w", fileName, err)
	}
	if file != nil {
		content.File = &event.EncryptedFileInfo{EncryptedFile: *file, URL: resp.ContentURI.CUString()}
	} else {
		content.URL = resp.ContentURI.CUString()
	}
	return c.SendMessage(ctx, roomID, content)
}

// DownloadMedia fetches the attachment of an m.image/m.file/... message, decrypting and
// hash-checking it when it was sent as an encrypted file.
func (c *StaffClient) DownloadMedia(ctx context.Context, content *event.MessageEventContent) ([]byte, error) {
	if content == nil {
		return nil, errors.New("no content")
	}
	uri := content.URL
	if content.File != nil {
		uri = content.File.URL
	}
	mxc, err := uri.Parse()
	if err != nil {
		return nil, fmt.Errorf("bad media URL %q: %w", uri, err)
	}
	data, err := c.Client.DownloadBytes(ctx, mxc)
	if err != nil {
		return nil, err
	}
	if content.File != nil {
		if err = content.File.DecryptInPlace(data); err != nil {
			return nil, fmt.Errorf("decrypting %s: %w", mxc, err)
		}
	}
	return data, nil
}

// MarkRead sends an m.read receipt (what a staff member reading a message in Element does).
func (c *StaffClient) MarkRead(ctx context.Context, roomID id.RoomID, eventID id.EventID) error {
	return c.Client.MarkRead(ctx, roomID, eventID)
}
