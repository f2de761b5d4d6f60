package validate

import "testing"

func TestSettingsTable(t *testing.T) {
	known := knownSettings(t)
	// A floor and the anchors the deploy files rely on, so a broken regex
	// cannot pass vacuously.
	if len(known) < 15 {
		t.Fatalf("only %d settings parsed from cmd/stepup/config.go: %v", len(known), known)
	}
	for _, name := range []string{"STEPUP_ADDR", "STEPUP_MASTER_KEY", "STEPUP_MONGODB_URI", "STEPUP_ISSUER"} {
		if !known[name] {
			t.Errorf("%s missing from the parsed settings", name)
		}
	}
}

func TestParseSettingsRejects(t *testing.T) {
	for name, src := range map[string]string{
		"no table":  "package main\n",
		"empty":     "var settings = []setting{\n}\n",
		"duplicate": "var settings = []setting{\n\t{\"STEPUP_A\", \"a\", \"\", \"\"},\n\t{\"STEPUP_A\", \"a\", \"\", \"\"},\n}\n",
	} {
		if _, err := ParseSettings([]byte(src)); err == nil {
			t.Errorf("%s: ParseSettings accepted it", name)
		}
	}
}
