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

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"log/slog"
	"os"

	_ "modernc.org/sqlite" // register database/sql driver

	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/logging"
	"github.com/FerretDB/FerretDB/internal/util/state"
)

// openDB opens existing database or creates a new one.
//
// All valid FerretDB database names are valid SQLite database names / file names,
// so no validation is needed.
// One exception is very long full path names for the filesystem,
// but we don't check it.
//
// stepup patch: file is the database file path (empty for in-memory databases);
// see makePrivate.
func openDB(name, uri, file string, memory bool, l *slog.Logger, sp *state.Provider) (*fsql.DB, error) {
	// stepup patch: create the file with mode 0600 before SQLite does (it would use 0644)
	if file != "" {
		if err := makePrivate(file); err != nil {
			return nil, lazyerrors.Error(err)
		}
	}

	db, err := sql.Open("sqlite", uri)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	db.SetMaxIdleConns(100)
	db.SetMaxOpenConns(100)

	// Each connection to in-memory database uses its own database.
	// See https://www.sqlite.org/inmemorydb.html.
	// We don't want that.
	if memory {
		db.SetMaxIdleConns(1)
		db.SetMaxOpenConns(1)
	}

	if err = db.Ping(); err != nil {
		_ = db.Close()
		return nil, lazyerrors.Error(err)
	}

	// stepup patch: -wal and -shm files created by SQLite take the mode of the database file (0600),
	// but make sure of that (and of old ones) once more
	if file != "" {
		if err = makePrivate(file); err != nil {
			_ = db.Close()
			return nil, lazyerrors.Error(err)
		}
	}

	// do it only once because version can't change
	if sp.Get().BackendVersion == "" {
		err := sp.Update(func(s *state.State) {
			s.BackendName = "SQLite"

			row := db.QueryRowContext(context.Background(), "SELECT sqlite_version()")
			if err := row.Scan(&s.BackendVersion); err != nil {
				l.Error("sqlite.metadata.pool.openDB: failed to query SQLite version", logging.Error(err))
			}
		})
		if err != nil {
			l.Error("sqlite.metadata.pool.openDB: failed to update state", logging.Error(err))
		}
	}

	return fsql.WrapDB(db, name, l), nil
}

// stepup patch: privateFileMode is the mode of SQLite database files and their -wal/-shm/-journal files.
const privateFileMode = 0o600

// makePrivate creates the database file with mode 0600 if it does not exist (so there is no moment
// when it exists with a wider mode), and sets mode 0600 on the database file and on its existing
// -wal, -shm and -journal files (files created by older versions were 0644).
//
// SQLite (unix VFS) creates the -wal, -shm and -journal files with the mode of the database file,
// so they are 0600 from the start too.
//
// stepup patch: this whole function.
func makePrivate(file string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, privateFileMode)

	switch {
	case err == nil:
		if err = f.Close(); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrExist):
		// nothing, chmod below
	default:
		return err
	}

	for _, name := range []string{file, file + "-wal", file + "-shm", file + "-journal"} {
		fi, err := os.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}

		if err != nil {
			return err
		}

		if !fi.Mode().IsRegular() || fi.Mode().Perm() == privateFileMode {
			continue
		}

		if err = os.Chmod(name, privateFileMode); err != nil {
			return err
		}
	}

	return nil
}
