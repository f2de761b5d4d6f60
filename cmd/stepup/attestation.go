package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/stepup-auth/stepup/mfa"
)

// maxTrustFile bounds the files read for attestation trust; the FIDO
// Alliance's MDS BLOB is a few megabytes.
const maxTrustFile = 64 << 20

// authenticatorPolicy turns the STEPUP_WEBAUTHN_AAL3 settings into the
// policy's mode, the attestation trust (nil in claimed mode) and the
// attestation conveyance to ask for. In attested mode it reads and verifies
// the MDS BLOB and the root files now, so a BLOB that does not chain to its
// root stops the start with a line naming the variable.
func authenticatorPolicy(c Config, now time.Time, log *slog.Logger) (mfa.AAL3Mode, *mfa.AttestationTrust, string, error) {
	conveyance := c.Attestation
	if c.AAL3 != "attested" {
		if conveyance == "" {
			conveyance = "none"
		}
		return mfa.AAL3Claimed, nil, conveyance, nil
	}
	if conveyance == "" {
		conveyance = "direct"
	}
	if err := checkAAL3(c); err != nil { // a Config built in code skips LoadConfig
		return 0, nil, "", err
	}
	tc := mfa.TrustConfig{Allowed: c.AAGUIDs}
	if c.MDSFile != "" {
		blob, err := readTrustFile(c.MDSFile)
		if err != nil {
			return 0, nil, "", fmt.Errorf("STEPUP_FIDO_MDS_FILE: %w", err)
		}
		var root []byte
		if c.MDSRoot != "" {
			if root, err = readTrustFile(c.MDSRoot); err != nil {
				return 0, nil, "", fmt.Errorf("STEPUP_FIDO_MDS_ROOT: %w", err)
			}
		}
		mds, err := mfa.LoadMDS(blob, root)
		if err != nil {
			return 0, nil, "", fmt.Errorf("STEPUP_FIDO_MDS_FILE: %s: %w", c.MDSFile, err)
		}
		if now.After(mds.NextUpdate) {
			log.Warn("the FIDO MDS BLOB is past its nextUpdate: fetch a new one, so that revoked models stop counting",
				"file", c.MDSFile, "no", mds.Number, "next_update", mds.NextUpdate.Format(time.DateOnly))
		}
		log.Info("FIDO MDS BLOB verified", "file", c.MDSFile, "no", mds.Number, "entries", len(mds.Entries))
		tc.MDS = mds.Entries
	}
	if c.AttestationRoots != "" {
		b, err := readTrustFile(c.AttestationRoots)
		if err != nil {
			return 0, nil, "", fmt.Errorf("STEPUP_WEBAUTHN_ATTESTATION_ROOTS: %w", err)
		}
		if tc.Roots, err = mfa.ParsePEMCertificates(b); err != nil {
			return 0, nil, "", fmt.Errorf("STEPUP_WEBAUTHN_ATTESTATION_ROOTS: %s: %w", c.AttestationRoots, err)
		}
	}
	trust, err := mfa.NewAttestationTrust(tc)
	if err != nil {
		return 0, nil, "", fmt.Errorf("STEPUP_WEBAUTHN_AAGUIDS: %w", err)
	}
	return mfa.AAL3Attested, trust, conveyance, nil
}

func readTrustFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTrustFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxTrustFile {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, maxTrustFile>>20)
	}
	return b, nil
}
