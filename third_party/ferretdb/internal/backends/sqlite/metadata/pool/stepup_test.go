// Copyright 2021 FerretDB Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

package pool

// stepup patch: test of private database files (see PATCHES.md).

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/FerretDB/FerretDB/internal/util/state"
	"github.com/FerretDB/FerretDB/internal/util/testutil"
)

// fileModes returns the permission bits of all files in dir.
func fileModes(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)

	res := map[string]fs.FileMode{}

	for _, e := range entries {
		fi, err := e.Info()
		require.NoError(t, err)
		res[e.Name()] = fi.Mode().Perm()
	}

	return res
}

func TestStepupPrivateFiles(t *testing.T) {
	t.Parallel()

	ctx := testutil.Ctx(t)
	dir := t.TempDir()
	uri := "file:" + dir + "/"

	sp, err := state.NewProvider("")
	require.NoError(t, err)

	// a database left by an unpatched version, with 0644 files
	old := filepath.Join(dir, "old.sqlite")
	for _, f := range []string{old, old + "-wal", old + "-shm"} {
		require.NoError(t, os.WriteFile(f, nil, 0o644))
		require.NoError(t, os.Chmod(f, 0o644))
	}

	p, _, err := New(uri+"?_pragma=journal_mode(wal)", testutil.Logger(t), sp)
	require.NoError(t, err)

	db, created, err := p.GetOrCreate(ctx, "new")
	require.NoError(t, err)
	require.True(t, created)

	_, err = db.ExecContext(ctx, "CREATE TABLE t (id INT) STRICT")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO t VALUES (1)")
	require.NoError(t, err)

	// SQLite's default mode is 0644 (minus umask); all files must be 0600 while open
	modes := fileModes(t, dir)
	for _, f := range []string{"new.sqlite", "new.sqlite-wal", "new.sqlite-shm", "old.sqlite", "old.sqlite-wal", "old.sqlite-shm"} {
		assert.Contains(t, modes, f)
	}

	for f, m := range modes {
		assert.Equal(t, fs.FileMode(0o600), m, "%s: %s", f, m)
	}

	p.Close()

	for f, m := range fileModes(t, dir) {
		assert.Equal(t, fs.FileMode(0o600), m, "%s: %s", f, m)
	}
}
