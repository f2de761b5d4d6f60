package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/tokens/guard"
)

// keySource is the resource server's view of the keys: the service's JWKS,
// discovered from its metadata as any resource server would (so the issuer's
// jwks_uri must be reachable from here).
type keySource struct {
	*guard.JWKS
	issuer string
}

func newJWKS(ctx context.Context, client *http.Client, target string) (*keySource, error) {
	meta := strings.TrimRight(target, "/") + "/.well-known/oauth-authorization-server"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, meta, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.Issuer == "" {
		return nil, fmt.Errorf("metadata at %s has no issuer", meta)
	}
	// Refetch quickly on an unknown kid: instances started together each
	// publish a key of their own within the first seconds.
	j, err := guard.NewJWKS(ctx, guard.JWKSConfig{Issuer: doc.Issuer, MetadataURL: meta, Client: client,
		MinRefreshInterval: time.Second, RefreshInterval: time.Minute})
	if err != nil {
		return nil, err
	}
	return &keySource{JWKS: j, issuer: doc.Issuer}, nil
}
