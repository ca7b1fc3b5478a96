package testenv

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix"
)

// CrossSign gives the account cross-signing keys and signs this device with them, as Element
// does at first sign-in ("Verify this device"). Bridges with encryption.verification_levels
// at cross-signed-* send room keys only to devices set up like this.
func (c *StaffClient) CrossSign(ctx context.Context) error {
	mach := c.Crypto.Machine()
	keys, err := mach.GenerateCrossSigningKeys()
	if err != nil {
		return err
	}
	err = mach.PublishCrossSigningKeys(ctx, keys, func(ui *mautrix.RespUserInteractive) any {
		return &mautrix.ReqUIAuthLogin{
			BaseAuthData: mautrix.BaseAuthData{Type: mautrix.AuthTypePassword, Session: ui.Session},
			User:         c.UserID.String(),
			Password:     c.Password,
		}
	})
	if err != nil {
		return fmt.Errorf("uploading cross-signing keys of %s: %w", c.UserID, err)
	}
	if err = mach.SignOwnDevice(ctx, mach.OwnIdentity()); err != nil {
		return fmt.Errorf("signing the device of %s: %w", c.UserID, err)
	}
	return nil
}
