package bridge

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/careline/careline/config"
	"github.com/careline/careline/store"
	"github.com/careline/careline/twilioapi"
)

func TestDeliveryMode(t *testing.T) {
	consented := &store.Patient{Consent: &store.Consent{At: time.Now(), By: "@dr:clinic"}}
	none := &store.Patient{}
	for _, tc := range []struct {
		name        string
		defaultMode string
		patient     *store.Patient
		markedPlain bool
		hasFile     bool
		want        string
	}{
		{"secure by default", config.ModeSecure, none, false, false, config.ModeSecure},
		{"consent alone is not enough when the clinic sends secure", config.ModeSecure, consented, false, false, config.ModeSecure},
		{"consent and a plain clinic", config.ModePlain, consented, false, false, config.ModePlain},
		{"no consent in a plain clinic", config.ModePlain, none, false, false, config.ModeSecure},
		{"marked !plain", config.ModeSecure, none, true, false, config.ModePlain},
		{"a file always goes secure", config.ModePlain, consented, true, true, config.ModeSecure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Connector{}
			c.Config.Delivery.DefaultMode = tc.defaultMode
			if got := c.deliveryMode(tc.patient, tc.markedPlain, tc.hasFile); got != tc.want {
				t.Fatalf("deliveryMode = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestBackoffGrowsWithinBounds(t *testing.T) {
	for _, tc := range []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{5, 8 * time.Second, 16 * time.Second},
		{9, 128 * time.Second, 256 * time.Second},
		{10, maxBackoff / 2, maxBackoff},
		{50, maxBackoff / 2, maxBackoff},
	} {
		for range 200 {
			if d := backoff(tc.attempt); d < tc.min || d > tc.max {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tc.attempt, d, tc.min, tc.max)
			}
		}
	}
	for _, tc := range []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, inboxSweepEvery / 2, inboxSweepEvery},
		{3, 2 * inboxSweepEvery, 4 * inboxSweepEvery},
		{30, inboxMaxBackoff / 2, inboxMaxBackoff},
	} {
		for range 200 {
			if d := inboxBackoff(tc.attempt); d < tc.min || d > tc.max {
				t.Fatalf("inboxBackoff(%d) = %v, want within [%v, %v]", tc.attempt, d, tc.min, tc.max)
			}
		}
	}
}

func TestDeliveryFailureWording(t *testing.T) {
	for _, tc := range []struct {
		name    string
		channel store.Channel
		code    int
		reason  string
		want    []string
	}{
		{"landline by code", store.ChannelSMS, twilioapi.CodeLandlineOrCarrier, "", []string{"the text message", "landline", "Twilio error 30006"}},
		{"secure link, opted out", store.ChannelSecure, twilioapi.CodeOptedOut, "", []string{"the text with the secure link", "STOP", "21610"}},
		{"careline's own reason", store.ChannelSMS, 0, "Twilio did not accept it for 1h0m0s.", []string{"was not sent: Twilio did not accept it for 1h0m0s"}},
		{"no reason at all", store.ChannelSecure, 0, "", []string{"could not be delivered to the patient's phone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := deliveryFailure(tc.channel, tc.code, tc.reason)
			if !strings.HasPrefix(got, "Not delivered: ") || strings.HasSuffix(got, ".") {
				t.Fatalf("%q: staff see it followed by more words", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
		})
	}
}

func TestTemporaryOrPermanentSendErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		temporary bool
		code      int
	}{
		{"no answer at all", errors.New("connection refused"), true, 0},
		{"Twilio unreachable", &twilioapi.Error{Err: errors.New("timeout")}, true, 0},
		{"rate limited", &twilioapi.Error{Code: twilioapi.CodeTooManyRequests, Status: 429}, true, twilioapi.CodeTooManyRequests},
		{"queue full", &twilioapi.Error{Code: twilioapi.CodeQueueFull, Status: 400}, true, twilioapi.CodeQueueFull},
		{"server error", &twilioapi.Error{Status: 503}, true, 0},
		{"invalid number", &twilioapi.Error{Code: twilioapi.CodeInvalidTo, Status: 400}, false, twilioapi.CodeInvalidTo},
		{"opted out", &twilioapi.Error{Code: twilioapi.CodeOptedOut, Status: 400}, false, twilioapi.CodeOptedOut},
		{"bad credentials", &twilioapi.Error{Code: twilioapi.CodeBadCredentials, Status: 401}, false, twilioapi.CodeBadCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			temporary, code := classifySendError(tc.err)
			if temporary != tc.temporary || code != tc.code {
				t.Fatalf("classifySendError = %v, %d; want %v, %d", temporary, code, tc.temporary, tc.code)
			}
			if tc.code != 0 && twilioapi.Permanent(tc.code) == tc.temporary {
				t.Fatalf("twilioapi.Permanent(%d) disagrees", tc.code)
			}
		})
	}
}

func TestMediaGone(t *testing.T) {
	for _, tc := range []struct {
		err  error
		gone bool
	}{
		{&twilioapi.Error{Status: 404}, true},
		{&twilioapi.Error{Status: 410}, true},
		{&twilioapi.Error{Code: twilioapi.CodeNotFound, Status: 404}, true},
		{&twilioapi.Error{Status: 503}, false},
		{errors.New("connection reset"), false},
		{nil, false},
	} {
		if got := mediaGone(tc.err); got != tc.gone {
			t.Errorf("mediaGone(%v) = %v, want %v", tc.err, got, tc.gone)
		}
	}
}
