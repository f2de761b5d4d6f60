package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// maxDocument caps the metadata and JWKS documents read (1 MiB); a key set
// is a few hundred bytes.
const maxDocument = 1 << 20

// wellKnown is the RFC 8414 §3 well-known URI suffix.
const wellKnown = "/.well-known/oauth-authorization-server"

// checkURL parses raw and accepts it only as an absolute https URL, or an
// http URL whose host is a loopback address or "localhost" (for local
// development and tests); without user info or fragment. Plain http
// elsewhere would let anyone on the path substitute the keys.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("guard: URL %q: %w", raw, err)
	}
	if u.User != nil || u.Fragment != "" || u.Host == "" {
		return nil, fmt.Errorf("guard: URL %q must be absolute, without user info or fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return nil, fmt.Errorf("guard: URL %q must use https (plain http only to a loopback host)", raw)
		}
	default:
		return nil, fmt.Errorf("guard: URL %q must use https", raw)
	}
	return u, nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// metadataURL derives the RFC 8414 §3.1 metadata location from an issuer:
// the well-known suffix goes between the host and the issuer's path, after
// removing a terminating "/".
func metadataURL(issuer string) (string, error) {
	u, err := checkURL(issuer)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" {
		return "", fmt.Errorf("guard: issuer %q must not have a query (RFC 8414 §2)", issuer)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	return u.Scheme + "://" + u.Host + wellKnown + path, nil
}

// newClient returns a copy of c (or a default client) whose redirects are
// held to checkURL and limited to three, and which has a Timeout.
func newClient(c *http.Client, timeout time.Duration) *http.Client {
	var cc http.Client
	if c != nil {
		cc = *c
	}
	if cc.Timeout == 0 {
		cc.Timeout = timeout
	}
	next := cc.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("guard: too many redirects")
		}
		if _, err := checkURL(req.URL.String()); err != nil {
			return err
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &cc
}

// get fetches u and returns its body: status 200 required, at most
// maxDocument bytes.
func get(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("guard: GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("guard: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("guard: GET %s: status %s", u, resp.Status)
	}
	if resp.ContentLength > maxDocument {
		return nil, fmt.Errorf("guard: GET %s: document larger than %d bytes", u, maxDocument)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("guard: GET %s: %w", u, err)
	}
	if len(body) > maxDocument {
		return nil, fmt.Errorf("guard: GET %s: document larger than %d bytes", u, maxDocument)
	}
	return body, nil
}

// discover reads the RFC 8414 metadata document at metaURL and returns its
// jwks_uri. The document's "issuer" must equal issuer exactly (RFC 8414
// §3.3), and jwks_uri must pass checkURL.
func discover(ctx context.Context, client *http.Client, metaURL, issuer string) (string, error) {
	body, err := get(ctx, client, metaURL)
	if err != nil {
		return "", err
	}
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &meta); err != nil {
		return "", fmt.Errorf("guard: decode metadata %s: %w", metaURL, err)
	}
	if meta.Issuer != issuer {
		return "", fmt.Errorf("guard: metadata %s names issuer %q, want %q", metaURL, meta.Issuer, issuer)
	}
	if meta.JWKSURI == "" {
		return "", fmt.Errorf("guard: metadata %s has no jwks_uri", metaURL)
	}
	if _, err := checkURL(meta.JWKSURI); err != nil {
		return "", fmt.Errorf("guard: metadata %s: jwks_uri: %w", metaURL, err)
	}
	return meta.JWKSURI, nil
}
