package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/careline/careline/internal/localstack"
)

// TestLoginAdminOnly: connecting the clinic's number is for bridge admins (a `user`-level
// nurse is refused), and a second admin logging in with the same credentials does not take
// the login over from the first.
func TestLoginAdminOnly(t *testing.T) {
	secondAdmin := "@admin2:" + localstack.ServerName
	s := startStack(t, stackOptions{Permissions: map[string]string{secondAdmin: "admin"}})
	ctx := waitCtx(t)

	status, out, err := s.LoginAs(ctx, s.nurse.UserID.String(), accountSID, authToken)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusForbidden || !strings.Contains(out["error"].(string), "administrators") {
		t.Fatalf("the nurse's login: HTTP %d %v", status, out)
	}
	s.mustLogin(ctx)

	status, out, err = s.LoginAs(ctx, secondAdmin, accountSID, authToken)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusConflict || !strings.Contains(out["error"].(string), "already connected by "+localstack.AdminUser) {
		t.Fatalf("the second admin's login: HTTP %d %v", status, out)
	}
	// The first admin still holds the login: opening a patient's room works for them.
	s.createDM(ctx, "+14155550142")
}
