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

// stepup patch: tests of the pushdown patches (see PATCHES.md).

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/must"
	"github.com/FerretDB/FerretDB/internal/util/state"
	"github.com/FerretDB/FerretDB/internal/util/testutil"
)

// stepupSetup returns a registry, a collection "c" in a new database, and the database name.
func stepupSetup(t *testing.T) (*metadata.Registry, backends.Collection, string) {
	t.Helper()

	sp, err := state.NewProvider("")
	require.NoError(t, err)

	r, err := metadata.NewRegistry(testutil.TestSQLiteURI(t, ""), 100, testutil.Logger(t), sp)
	require.NoError(t, err)
	t.Cleanup(r.Close)

	dbName := testutil.DatabaseName(t)

	return r, newCollection(r, dbName, "c"), dbName
}

// doc is a shortcut for types.NewDocument.
func doc(pairs ...any) *types.Document {
	return must.NotFail(types.NewDocument(pairs...))
}

// arr is a shortcut for types.NewArray.
func arr(values ...any) *types.Array {
	return must.NotFail(types.NewArray(values...))
}

// plan returns the explain result and its query plan as one string.
func plan(t *testing.T, ctx context.Context, c backends.Collection, filter *types.Document) (*backends.ExplainResult, string) {
	t.Helper()

	res, err := c.Explain(ctx, &backends.ExplainParams{Filter: filter})
	require.NoError(t, err)

	p := must.NotFail(res.QueryPlanner.Get("Plan")).(*types.Array)

	var lines []string
	for _, v := range must.NotFail(iterator.ConsumeValues(p.Iterator())) {
		lines = append(lines, v.(string))
	}

	return res, strings.Join(lines, "\n")
}

// explainSQL runs EXPLAIN QUERY PLAN for the given statement and returns the plan as one string.
func explainSQL(t *testing.T, ctx context.Context, r *metadata.Registry, dbName, q string, args ...any) string {
	t.Helper()

	rows, err := r.DatabaseGetExisting(ctx, dbName).QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
	require.NoError(t, err)

	defer rows.Close()

	var lines []string

	for rows.Next() {
		var id, parent, notused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &notused, &detail))
		lines = append(lines, detail)
	}

	require.NoError(t, rows.Err())

	return strings.Join(lines, "\n")
}

func TestStepupFieldExpression(t *testing.T) {
	t.Parallel()

	ctx := testutil.Ctx(t)
	r, c, dbName := stepupSetup(t)

	// one shared helper for the index and the query text
	assert.Equal(t, metadata.IDColumn, metadata.FieldExpression("_id"))
	assert.Equal(t, `_ferretdb_sjson->"_id"`, metadata.IDColumn)
	assert.Equal(t, `_ferretdb_sjson->"a"->"b"`, metadata.FieldExpression("a.b"))

	_, err := c.InsertAll(ctx, &backends.InsertAllParams{Docs: []*types.Document{doc("_id", "a")}})
	require.NoError(t, err)

	// the index DDL is byte for byte the one of unpatched v1.24.2,
	// so databases created by it are used with their existing indexes, with no migration
	table := r.CollectionGet(ctx, dbName, "c").TableName

	var ddl string
	err = r.DatabaseGetExisting(ctx, dbName).QueryRowContext(
		ctx, `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`, table+"__id_",
	).Scan(&ddl)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf(`CREATE UNIQUE INDEX %q ON %q (_ferretdb_sjson->"_id")`, table+"__id_", table), ddl)
}

func TestStepupIDPushdownPlan(t *testing.T) {
	t.Parallel()

	ctx := testutil.Ctx(t)
	r, c, dbName := stepupSetup(t)

	_, err := c.InsertAll(ctx, &backends.InsertAllParams{Docs: []*types.Document{doc("_id", "a", "x", int32(1))}})
	require.NoError(t, err)

	table := r.CollectionGet(ctx, dbName, "c").TableName
	search := fmt.Sprintf("SEARCH %s USING INDEX %s__id_ (<expr>=?)", table, table)
	oid := types.ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

	for name, tc := range map[string]struct {
		filter   *types.Document
		pushdown bool
	}{
		"ID":              {filter: doc("_id", "a"), pushdown: true},
		"ObjectID":        {filter: doc("_id", oid), pushdown: true},
		"IDAndOther":      {filter: doc("_id", "a", "x", int32(1)), pushdown: true},
		"OtherAndEqID":    {filter: doc("x", int32(1), "_id", doc("$eq", "a")), pushdown: true},
		"IDIn":            {filter: doc("_id", doc("$in", arr("a", "b"))), pushdown: true},
		"IDInMixedOther":  {filter: doc("_id", doc("$in", arr("a", oid)), "x", doc("$gt", int32(0))), pushdown: true},
		"IDNumber":        {filter: doc("_id", int32(1))},
		"IDInEmpty":       {filter: doc("_id", doc("$in", arr()))},
		"IDInNumber":      {filter: doc("_id", doc("$in", arr("a", int32(1))))},
		"IDGt":            {filter: doc("_id", doc("$gt", "a"))},
		"IDEqAndOtherOp":  {filter: doc("_id", doc("$eq", "a", "$ne", "b"))},
		"NotIndexedField": {filter: doc("x", "a")},
		"Empty":           {filter: doc()},
		"Nil":             {},
	} {
		t.Run(name, func(t *testing.T) {
			res, p := plan(t, ctx, c, tc.filter)
			assert.Equal(t, tc.pushdown, res.FilterPushdown)

			if tc.pushdown {
				assert.Contains(t, p, search)
			} else {
				assert.Contains(t, p, "SCAN "+table)
			}
		})
	}

	// the UpdateAll and DeleteAll statements (same text as in collection.go)
	p := explainSQL(t, ctx, r, dbName,
		fmt.Sprintf(`UPDATE %q SET %s = ? WHERE %s = ?`, table, metadata.DefaultColumn, metadata.IDColumn), "{}", `"a"`,
	)
	assert.Contains(t, p, search)

	p = explainSQL(t, ctx, r, dbName,
		fmt.Sprintf(`DELETE FROM %q WHERE %s IN (?, ?)`, table, metadata.IDColumn), `"a"`, `"b"`,
	)
	assert.Contains(t, p, search)
}

func TestStepupSecondaryPushdownPlan(t *testing.T) {
	t.Parallel()

	ctx := testutil.Ctx(t)
	r, c, dbName := stepupSetup(t)

	_, err := c.CreateIndexes(ctx, &backends.CreateIndexesParams{Indexes: []backends.IndexInfo{
		{Name: "u_1", Key: []backends.IndexKeyPair{{Field: "u"}}},
		{Name: "w_-1", Key: []backends.IndexKeyPair{{Field: "w", Descending: true}}},
		{Name: "a_1_b_1", Key: []backends.IndexKeyPair{{Field: "a"}, {Field: "b"}}},
		{Name: "n.m_1", Key: []backends.IndexKeyPair{{Field: "n.m"}}},
	}})
	require.NoError(t, err)

	table := r.CollectionGet(ctx, dbName, "c").TableName
	oid := types.ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

	for name, tc := range map[string]struct {
		filter *types.Document
		index  string // empty for no pushdown
	}{
		"Eq":              {filter: doc("u", "u1"), index: "u_1"},
		"EqWithOthers":    {filter: doc("x", int32(1), "u", "u1", "y", doc("$gt", int32(2))), index: "u_1"},
		"EqOp":            {filter: doc("u", doc("$eq", oid)), index: "u_1"},
		"Descending":      {filter: doc("w", "w1"), index: "w_-1"},
		"FirstIndexed":    {filter: doc("z", "z", "w", "w1", "u", "u1"), index: "w_-1"},
		"IDWins":          {filter: doc("u", "u1", "_id", "a"), index: "_id_"},
		"Number":          {filter: doc("u", int32(1))},
		"Gt":              {filter: doc("u", doc("$gt", "u1"))},
		"Compound":        {filter: doc("a", "a1", "b", "b1")},
		"Dotted":          {filter: doc("n.m", "x")},
		"NotIndexedField": {filter: doc("v", "u1")},
	} {
		t.Run(name, func(t *testing.T) {
			res, p := plan(t, ctx, c, tc.filter)

			if tc.index == "" {
				assert.False(t, res.FilterPushdown)
				assert.Contains(t, p, "SCAN "+table)

				return
			}

			assert.True(t, res.FilterPushdown)
			assert.NotContains(t, p, "SCAN "+table)

			if tc.index == "_id_" {
				assert.Contains(t, p, fmt.Sprintf("SEARCH %s USING INDEX %s__id_ (<expr>=?)", table, table))
				return
			}

			// (f = ? OR (f >= '[' AND f < '\')): both terms searched in the index
			assert.Contains(t, p, "MULTI-INDEX OR")
			assert.Contains(t, p, fmt.Sprintf("SEARCH %s USING INDEX %s_%s (<expr>=?)", table, table, tc.index))
			assert.Contains(t, p, fmt.Sprintf("SEARCH %s USING INDEX %s_%s (<expr>>? AND <expr><?)", table, table, tc.index))
		})
	}
}

// TestStepupPushdownCorrectness checks that, for every filter, the documents the handler keeps
// (common.FilterDocument, as find/count/update/delete/findAndModify do) from the pushed down query
// are exactly those it keeps from a full scan.
func TestStepupPushdownCorrectness(t *testing.T) {
	t.Parallel()

	ctx := testutil.Ctx(t)
	_, c, _ := stepupSetup(t)

	_, err := c.CreateIndexes(ctx, &backends.CreateIndexesParams{Indexes: []backends.IndexInfo{
		{Name: "u_1", Key: []backends.IndexKeyPair{{Field: "u"}}},
	}})
	require.NoError(t, err)

	oid := types.ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	oidHex := hex.EncodeToString(oid[:])
	tricky := "a<b\"é\u2028\\/&"

	docs := []*types.Document{
		doc("_id", "s1", "u", "u1", "k", "x"),
		doc("_id", "s2", "u", "u2", "k", "x"),
		doc("_id", "a1", "u", arr("u0", "u1"), "k", "x"),
		doc("_id", "a2", "u", arr("u2", "u3"), "k", "y"),
		doc("_id", "a3", "u", arr(arr("u1")), "k", "x"),
		doc("_id", "a4", "u", arr(), "k", "x"),
		doc("_id", "a5", "u", arr(doc("v", "u1"), "u1"), "k", "y"),
		doc("_id", "d1", "u", doc("x", "u1"), "k", "x"),
		doc("_id", "n1", "u", int32(1), "k", "x"),
		doc("_id", "m1", "k", "x"),
		doc("_id", "o1", "u", oid, "k", "x"),
		doc("_id", "o2", "u", oidHex, "k", "x"),
		doc("_id", "o3", "u", arr(oid), "k", "x"),
		doc("_id", "t1", "u", tricky, "k", "x"),
		doc("_id", "t2", "u", arr(tricky), "k", "x"),
		doc("_id", tricky, "u", "u1", "k", "y"),
		doc("_id", oid, "u", "u9", "k", "x"),
		// no doc("_id", oidHex): ObjectID and string _id with the same hex collide in the _id_ index (upstream)
		doc("_id", int32(7), "u", "u1", "k", "x"),
	}

	_, err = c.InsertAll(ctx, &backends.InsertAllParams{Docs: docs})
	require.NoError(t, err)

	filters := map[string]*types.Document{
		"U1":          doc("u", "u1"),
		"U1EqAndK":    doc("u", doc("$eq", "u1"), "k", "x"),
		"KAndU2":      doc("k", "y", "u", "u2"),
		"UOid":        doc("u", oid),
		"UOidHex":     doc("u", oidHex),
		"UTricky":     doc("u", tricky),
		"UMissing":    doc("u", "nope"),
		"ID":          doc("_id", "s1"),
		"IDAndU":      doc("_id", "a1", "u", "u1"),
		"IDAndWrongU": doc("_id", "a1", "u", "u2"),
		"IDTricky":    doc("k", "y", "_id", tricky),
		"IDOid":       doc("_id", oid),
		"IDOidHex":    doc("_id", doc("$eq", oidHex)),
		"IDIn":        doc("_id", doc("$in", arr("s1", "a2", tricky, oid, "zzz")), "k", "x"),
		"DupID":       doc("_id", "s1", "_id", "s2"),
	}

	all := queryIDs(t, ctx, c, nil, nil)
	require.Len(t, all, len(docs))

	for name, filter := range filters {
		t.Run(name, func(t *testing.T) {
			want := queryIDs(t, ctx, c, nil, filter)
			got := queryIDs(t, ctx, c, filter, filter)
			assert.Equal(t, want, got)

			// and the pushdown did filter in SQL
			fetched := queryIDs(t, ctx, c, filter, nil)
			assert.Less(t, len(fetched), len(docs))
		})
	}

	// sanity check of the expectations: arrays containing the value match
	assert.Equal(t, []string{"7", "a1", "a5", tricky, "s1"}, queryIDs(t, ctx, c, nil, doc("u", "u1")))
}

// queryIDs queries the collection with the given pushdown filter, keeps documents matching handlerFilter
// (if not nil) like the handler does, and returns their sorted _id values as strings.
func queryIDs(t *testing.T, ctx context.Context, c backends.Collection, pushdown, handlerFilter *types.Document) []string {
	t.Helper()

	res, err := c.Query(ctx, &backends.QueryParams{Filter: pushdown})
	require.NoError(t, err)

	docs, err := iterator.ConsumeValues(res.Iter)
	require.NoError(t, err)

	ids := []string{}

	for _, d := range docs {
		if handlerFilter != nil {
			matches, err := common.FilterDocument(d, handlerFilter)
			require.NoError(t, err)

			if !matches {
				continue
			}
		}

		ids = append(ids, fmt.Sprintf("%v", must.NotFail(d.Get("_id"))))
	}

	sort.Strings(ids)

	return ids
}
