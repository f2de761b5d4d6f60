package store

import "testing"

// TestDatabaseFromURI: the database is the URI's path, also behind a
// percent-encoded Unix socket (the embedded store's and devstore's URIs).
func TestDatabaseFromURI(t *testing.T) {
	for uri, want := range map[string]string{
		"mongodb://localhost:27017":                         "stepup",
		"mongodb://localhost:27017/":                        "stepup",
		"mongodb://u:p@a,b,c/prod?replicaSet=rs0":           "prod",
		"mongodb+srv://cluster0.example.net/mfa?w=majority": "mfa",
		"mongodb://%2Ftmp%2Fdata%2Fstore.sock/":             "stepup",
		"mongodb://%2Ftmp%2Fdata%2Fstore.sock/second":       "second",
		"mongodb://%2Ftmp%2Fdata%2Fstore.sock/second?x=1":   "second",
	} {
		if got := databaseFromURI(uri); got != want {
			t.Errorf("databaseFromURI(%q) = %q, want %q", uri, got, want)
		}
	}
}
