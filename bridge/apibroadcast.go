package bridge

import (
	"context"
	"net/http"

	"github.com/careline/careline/api"
)

// StartBroadcast starts a broadcast through the broadcast engine.
func (b *apiBackend) StartBroadcast(ctx context.Context, integration, id string, req *api.BroadcastRequest) error {
	return &api.Refusal{Status: http.StatusServiceUnavailable, Message: "broadcasts are not available yet"}
}

// Broadcast reports a broadcast's progress.
func (b *apiBackend) Broadcast(ctx context.Context, id string) (*api.BroadcastStatus, error) {
	return nil, nil
}
