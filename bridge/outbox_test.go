package bridge

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/careline/careline/store"
	"github.com/careline/careline/twilioapi"
)

// TestSenderRecordsItsLastBatchWhenStopped: the outcomes of a batch wait to be recorded with
// the next claim; when careline stops while the batch is with Twilio, the sender still records
// them before it ends, so a text Twilio took is not left "sending" until the next start.
func TestSenderRecordsItsLastBatchWhenStopped(t *testing.T) {
	f := newSenderFixture(t)
	ctx := context.Background()
	// A Twilio that holds its answer until the test lets it go.
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	twilio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(arrived) })
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"sid":"SMstopped","status":"queued"}`)
	}))
	defer twilio.Close()
	tw, err := twilioapi.New(twilio.URL, testAccountSID, testAuthToken)
	if err != nil {
		t.Fatal(err)
	}
	f.client.twilio = tw
	o := &store.Outgoing{PatientID: "p1", Kind: store.KindMessage, Body: "see you tuesday"}
	if err = f.client.enqueue(ctx, o); err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	s := &sender{cl: f.client, wake: make(chan struct{}, 1), cancel: stop, done: make(chan struct{})}
	go s.run(runCtx)
	select {
	case <-arrived:
	case <-time.After(time.Minute):
		t.Fatal("the text never reached Twilio")
	}
	stop() // careline stops while Twilio has the text; no claim follows to record it with
	close(release)
	<-s.done

	got, err := f.store.GetOutgoing(ctx, o.Seq)
	if err != nil || got == nil || got.State != store.OutboxSent || got.TwilioSID != "SMstopped" {
		t.Fatalf("after the stop the text is %+v (%v), want sent with Twilio's SID", got, err)
	}
}
