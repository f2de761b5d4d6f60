package mfa

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/metadata/providers/memory"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
)

// AttestationTrust decides whether a new credential's attestation is
// trusted (W3C WebAuthn Level 3 §7.1, the steps that obtain trust anchors
// and assess the attestation trustworthiness): the statement verified,
// it carries a certificate chain (basic, AttCA or anonymisation-CA
// attestation — never self or none), the chain leads to a root trusted for
// the credential's AAGUID, that model's status is acceptable, and the
// AAGUID is allowed. The roots and statuses are go-webauthn metadata
// entries: from a FIDO Metadata Service BLOB (LoadMDS) and/or from
// operator-supplied roots for listed AAGUIDs.
type AttestationTrust struct {
	provider metadata.Provider
	allowed  map[uuid.UUID]bool // nil: every AAGUID the provider has an entry for
}

// TrustConfig says what NewAttestationTrust trusts.
type TrustConfig struct {
	// MDS are the entries of a verified Metadata Service BLOB (LoadMDS):
	// each model's attestation roots and status reports.
	MDS []metadata.Entry
	// Roots are trust anchors for the AAGUIDs in Allowed that MDS does not
	// describe (an enterprise's own attestation CA, or no MDS at all).
	Roots []*x509.Certificate
	// Allowed are the AAGUIDs that may be attested. Empty: every model
	// MDS describes (it needs MDS then).
	Allowed []uuid.UUID
}

// NewAttestationTrust builds the trust c describes. It fails when nothing
// could ever be attested, or an allowed AAGUID has no root.
func NewAttestationTrust(c TrustConfig) (*AttestationTrust, error) {
	entries := map[uuid.UUID]*metadata.Entry{}
	for i := range c.MDS {
		if e := &c.MDS[i]; e.AaGUID != uuid.Nil {
			entries[e.AaGUID] = e
		}
	}
	t := &AttestationTrust{}
	if len(c.Allowed) > 0 {
		t.allowed = map[uuid.UUID]bool{}
	}
	for _, id := range c.Allowed {
		if id == uuid.Nil {
			return nil, errors.New("the all-zero AAGUID names no model and cannot be allowed")
		}
		t.allowed[id] = true
		if entries[id] != nil {
			continue
		}
		if len(c.Roots) == 0 {
			return nil, fmt.Errorf("AAGUID %s has no attestation root: it is not in the metadata and no roots are given", id)
		}
		entries[id] = &metadata.Entry{AaGUID: id, MetadataStatement: metadata.Statement{AaGUID: id,
			AttestationTypes:            metadata.AuthenticatorAttestationTypes{metadata.BasicFull, metadata.AttCA, metadata.AnonCA},
			AttestationRootCertificates: c.Roots}}
	}
	if len(entries) == 0 {
		return nil, errors.New("no authenticator model to trust: give a metadata BLOB or allowed AAGUIDs with roots")
	}
	p, err := memory.New(memory.WithMetadata(entries), memory.WithValidateEntry(true),
		memory.WithValidateTrustAnchor(true), memory.WithValidateStatus(true), memory.WithValidateAttestationTypes(true))
	if err != nil {
		return nil, err
	}
	t.provider = p
	return t, nil
}

// Attests reports whether cred, just verified by a registration ceremony,
// has a trusted attestation (see AttestationTrust). A nil t trusts none.
// go-webauthn verifies the statement again, this time with the metadata
// (webauthn.Credential.Verify), with the RP's own attestation and signature
// policies.
func (t *AttestationTrust) Attests(cred *webauthn.Credential, policy protocol.AttestationPolicy, sig protocol.SignaturePolicy) bool {
	if t == nil {
		return false
	}
	switch metadata.AuthenticatorAttestationType(cred.AttestationType) {
	case metadata.BasicFull, metadata.AttCA, metadata.AnonCA: // a certificate chain to check
	default:
		return false // none, self: nothing vouches for the model
	}
	id, err := uuid.FromBytes(cred.Authenticator.AAGUID)
	if err != nil || id == uuid.Nil {
		return false
	}
	if t.allowed != nil && !t.allowed[id] {
		return false
	}
	// The provider requires an entry for the AAGUID, checks the model's
	// status and attestation types, and verifies the x5c chain against the
	// entry's roots.
	return cred.Verify(t.provider, policy, sig) == nil
}

// MDS is a verified FIDO Metadata Service BLOB.
type MDS struct {
	Number     int
	NextUpdate time.Time
	Entries    []metadata.Entry
}

// LoadMDS verifies a Metadata Service BLOB (FIDO MDS 3 §3.1.7: the JWT's
// x5c chain must lead to root, and the JWT must be signed by its first
// certificate) and returns its entries, with go-webauthn's metadata
// decoder. rootPEM is the trust anchor; empty: the FIDO Alliance's MDS
// root (metadata.ProductionMDSRoot). Entries that do not parse are
// skipped, as go-webauthn does for the live service.
func LoadMDS(blob, rootPEM []byte) (*MDS, error) {
	opts := []metadata.DecoderOption{metadata.WithIgnoreEntryParsingErrors()}
	if len(rootPEM) > 0 {
		roots, err := ParsePEMCertificates(rootPEM)
		if err != nil {
			return nil, err
		}
		if len(roots) != 1 {
			return nil, fmt.Errorf("the MDS root file must hold one certificate, it holds %d", len(roots))
		}
		opts = append(opts, metadata.WithRootCertificate(base64.StdEncoding.EncodeToString(roots[0].Raw)))
	}
	d, err := metadata.NewDecoder(opts...)
	if err != nil {
		return nil, err
	}
	payload, err := d.DecodeBytes(blob)
	if err != nil {
		return nil, fmt.Errorf("the BLOB's signature or certificate chain does not verify against the MDS root: %w", err)
	}
	m, err := d.Parse(payload)
	if err != nil {
		return nil, fmt.Errorf("the BLOB's payload: %w", err)
	}
	return &MDS{Number: m.Parsed.Number, NextUpdate: m.Parsed.NextUpdate, Entries: m.Parsed.Entries}, nil
}

// ParsePEMCertificates returns every CERTIFICATE block of a PEM file; it
// fails on none, on another kind of block, or on a certificate that does not
// parse.
func ParsePEMCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a PEM block of type %q, want CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("a certificate does not parse: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}
