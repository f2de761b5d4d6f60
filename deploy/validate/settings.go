package validate

import (
	"fmt"
	"regexp"
)

var (
	// settingsTable is the body of `var settings = []setting{ ... }`.
	settingsTable = regexp.MustCompile(`(?s)var settings = \[\]setting\{\n(.*?)\n\}`)
	// settingRow is one {"STEPUP_X", "flag", "default", "usage"} row.
	settingRow = regexp.MustCompile(`(?m)^\s*\{"(STEPUP_[A-Z0-9_]+)",\s*"([a-z0-9-]+)",`)
)

// ParseSettings returns the environment variable names of the settings table
// in the source of cmd/stepup/config.go, in order.
func ParseSettings(configGo []byte) ([]string, error) {
	m := settingsTable.FindSubmatch(configGo)
	if m == nil {
		return nil, fmt.Errorf("no `var settings = []setting{...}` table found")
	}
	var names []string
	seen := map[string]bool{}
	for _, row := range settingRow.FindAllSubmatch(m[1], -1) {
		name := string(row[1])
		if seen[name] {
			return nil, fmt.Errorf("setting %s listed twice", name)
		}
		seen[name] = true
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("settings table has no STEPUP_* rows")
	}
	return names, nil
}
