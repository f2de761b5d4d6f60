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

package sqlite

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// prepareSelectClause returns SELECT clause for default column of provided table name.
//
// For capped collection with onlyRecordIDs, it returns select clause for recordID column.
//
// For capped collection, it returns select clause for recordID column and default column.
func prepareSelectClause(table, comment string, capped, onlyRecordIDs bool) string {
	if comment != "" {
		comment = strings.ReplaceAll(comment, "/*", "/ *")
		comment = strings.ReplaceAll(comment, "*/", "* /")
		comment = `/* ` + comment + ` */`
	}

	if capped && onlyRecordIDs {
		return fmt.Sprintf(`SELECT %s %s FROM %q`, comment, metadata.RecordIDColumn, table)
	}

	if capped {
		return fmt.Sprintf(`SELECT %s %s, %s FROM %q`, comment, metadata.RecordIDColumn, metadata.DefaultColumn, table)
	}

	return fmt.Sprintf(`SELECT %s %s FROM %q`, comment, metadata.DefaultColumn, table)
}

// prepareOrderByClause returns ORDER BY clause for given sort document.
//
// The provided sort document should be already validated.
// Provided document should only contain a single value.
func prepareOrderByClause(sort *types.Document) string {
	if sort.Len() != 1 {
		return ""
	}

	v := must.NotFail(sort.Get("$natural"))
	var order string

	switch v.(int64) {
	case 1:
		// Ascending order
	case -1:
		order = " DESC"
	default:
		panic("not reachable")
	}

	return fmt.Sprintf(" ORDER BY %s%s", metadata.RecordIDColumn, order)
}

// stepup patch: filter pushdown shared by Query and Explain (upstream had two copies that pushed down
// only a filter of exactly {_id: <string|ObjectID>}, with an expression that no index matched).
//
// The handler filters every returned document again in Go (find, count, aggregate $match, update,
// findAndModify, delete), so the WHERE clause only has to select a superset of the matching documents.
// It uses at most one condition, always on an indexed expression ([metadata.FieldExpression]):
//
//   - a top-level _id equal to a string or ObjectID (plain value or {$eq: v}),
//     or {_id: {$in: [<strings/ObjectIDs>]}}: `_id = ?` / `_id IN (?, …)`, whatever other keys the filter has;
//   - otherwise the first top-level string/ObjectID equality on a field with a single-field index:
//     `(f = ? OR (f >= '[' AND f < '\'))`. MongoDB equality also matches arrays that contain the value;
//     `->` returns JSON text and arrays (only arrays) start with '[', so the second term keeps
//     those documents, and both terms are searchable in the index (SQLite MULTI-INDEX OR).
//
// String and ObjectID values are both stored as JSON strings ("<hex>" for ObjectID),
// so {_id: "<hex>"} also selects an ObjectID _id with the same hex; that is a superset, too.

// pushdownFieldRe matches field names that are safe to use with [metadata.FieldExpression]
// (`->"name"` is read by SQLite as path $.name: names with '.', '[', '"', '$' or all digits would mean
// something else; names with the reserved prefix may clash with column names).
var pushdownFieldRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// prepareWhereClause returns WHERE clause (with a leading space, or empty) and its arguments for the given filter.
func prepareWhereClause(meta *metadata.Collection, filter *types.Document) (string, []any) {
	keys := filter.Keys()
	values := filter.Values()

	for i, k := range keys {
		if k != "_id" {
			continue
		}

		// a filter may contain the same key twice; each occurrence must match, so any one gives a superset
		if ids := pushdownIDValues(values[i]); len(ids) > 0 {
			placeholders := make([]string, len(ids))
			for j := range ids {
				placeholders[j] = "?"
			}

			if len(ids) == 1 {
				return fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn), ids
			}

			return fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, strings.Join(placeholders, ", ")), ids
		}
	}

	if meta == nil {
		return "", nil
	}

	for i, k := range keys {
		if k == "_id" || strings.HasPrefix(k, backends.ReservedPrefix) || !pushdownFieldRe.MatchString(k) {
			continue
		}

		if !hasSingleFieldIndex(meta, k) {
			continue
		}

		v, ok := pushdownEqValue(values[i])
		if !ok {
			continue
		}

		expr := metadata.FieldExpression(k)
		where := fmt.Sprintf(` WHERE (%[1]s = ? OR (%[1]s >= '[' AND %[1]s < '\'))`, expr)

		return where, []any{v}
	}

	return "", nil
}

// pushdownEqValue returns the SQL argument for a filter value that is a string or ObjectID
// given as a plain value or as {$eq: v}.
func pushdownEqValue(v any) (string, bool) {
	if d, ok := v.(*types.Document); ok {
		if d.Len() != 1 || d.Keys()[0] != "$eq" {
			return "", false
		}

		v = d.Values()[0]
	}

	switch v.(type) {
	case string, types.ObjectID:
		return string(must.NotFail(sjson.MarshalSingleValue(v))), true
	default:
		return "", false
	}
}

// pushdownIDValues returns SQL arguments for an _id filter value:
// a string or ObjectID (plain or {$eq: v}), or {$in: [<strings/ObjectIDs>]} (non-empty).
func pushdownIDValues(v any) []any {
	if arg, ok := pushdownEqValue(v); ok {
		return []any{arg}
	}

	d, ok := v.(*types.Document)
	if !ok || d.Len() != 1 || d.Keys()[0] != "$in" {
		return nil
	}

	arr, ok := d.Values()[0].(*types.Array)
	if !ok || arr.Len() == 0 {
		return nil
	}

	args := make([]any, arr.Len())

	for i := range arr.Len() {
		e := must.NotFail(arr.Get(i))

		switch e.(type) {
		case string, types.ObjectID:
			args[i] = string(must.NotFail(sjson.MarshalSingleValue(e)))
		default:
			return nil
		}
	}

	return args
}

// hasSingleFieldIndex returns true if the collection has an index on exactly the given field.
func hasSingleFieldIndex(meta *metadata.Collection, field string) bool {
	for _, index := range meta.Settings.Indexes {
		if len(index.Key) == 1 && index.Key[0].Field == field {
			return true
		}
	}

	return false
}
