/*-------------------------------------------------------------------------
 *
 * archive.c
 *	  The integrity tags of tenant archives (payymo.export_tenant() and
 *	  payymo.restore_tenant(); the format is in sql/lifecycle.sql).
 *
 * An archive is text, one line per item.  Each line is
 *
 *	  <tag: 32 hexadecimal characters> <space> <body>
 *
 * where the tag is BLAKE2b-128 keyed with a subkey of a root key,
 * crypto_kdf_derive_from_key(32, subkey id = tenant id, "payymoar", root key
 * of the archive's version), over
 *
 *	  length of archive id (LE64) || archive id || line number (LE64) || body
 *
 * The archive id is random per export and the line number counts from 1, so
 * a line changed, dropped, moved, or taken from another archive (of this or
 * another tenant) fails its tag; the last line states the line count, so a
 * truncated archive fails too.  Only the extension's SECURITY DEFINER
 * functions may compute tags: the functions here are not granted to PUBLIC,
 * for a tagging function is a forging function.
 *
 * The key derivation and the hashing of the archive id are done once per
 * call, not once per line: each line's hash continues a copy of that state.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "payymo.h"

PG_FUNCTION_INFO_V1(payymo_archive_line);
PG_FUNCTION_INFO_V1(payymo_export_tenant);
PG_FUNCTION_INFO_V1(payymo_archive_first_bad);

#define TAG_BYTES	16
#define TAG_HEX		(2 * TAG_BYTES)

/* Rows fetched from a cursor at a time. */
#define FETCH_BATCH 1000

static const char archive_kdf_context[crypto_kdf_CONTEXTBYTES] = {'p', 'a', 'y', 'y', 'm', 'o', 'a', 'r'};

static void
update_le64(crypto_generichash_state *state, uint64 value)
{
	unsigned char buf[8];
	int			i;

	for (i = 0; i < 8; i++)
		buf[i] = (unsigned char) (value >> (8 * i));
	crypto_generichash_update(state, buf, sizeof(buf));
}

/*
 * The hash state of an archive after its key and id: every line's tag
 * continues a copy of it.  The caller wipes the state.
 */
static void
archive_state(crypto_generichash_state *state, int version, PayymoTenantId tenant,
			  const char *archive_id)
{
	unsigned char subkey[PAYYMO_SUBKEY_BYTES];
	size_t		idlen = strlen(archive_id);

	payymo_crypto_derive(subkey, version, (uint64) tenant, archive_kdf_context);
	crypto_generichash_init(state, subkey, sizeof(subkey), TAG_BYTES);
	sodium_memzero(subkey, sizeof(subkey));
	update_le64(state, idlen);
	crypto_generichash_update(state, (const unsigned char *) archive_id, idlen);
}

/* The state for the SQL functions' arguments (key_version, tenant_id, archive_id). */
static void
archive_state_from_args(FunctionCallInfo fcinfo, crypto_generichash_state *state)
{
	archive_state(state, PG_GETARG_INT32(0), PG_GETARG_INT64(1),
				  text_to_cstring(PG_GETARG_TEXT_PP(2)));
}

static void
line_tag(const crypto_generichash_state *archive, int64 n, const char *body,
		 size_t bodylen, unsigned char *tag)
{
	crypto_generichash_state state = *archive;

	update_le64(&state, (uint64) n);
	crypto_generichash_update(&state, (const unsigned char *) body, bodylen);
	crypto_generichash_final(&state, tag, TAG_BYTES);
	sodium_memzero(&state, sizeof(state));
}

/* The line: the body's tag, a space, the body. */
static text *
tagged_line(const crypto_generichash_state *archive, int64 n, const text *body)
{
	size_t		bodylen = VARSIZE_ANY_EXHDR(body);
	unsigned char tag[TAG_BYTES];
	text	   *line = palloc(VARHDRSZ + TAG_HEX + 1 + bodylen);
	char	   *p = VARDATA(line);

	line_tag(archive, n, VARDATA_ANY(body), bodylen, tag);
	SET_VARSIZE(line, VARHDRSZ + TAG_HEX + 1 + bodylen);
	/* sodium_bin2hex writes a terminating NUL, which the space overwrites. */
	sodium_bin2hex(p, TAG_HEX + 1, tag, TAG_BYTES);
	p[TAG_HEX] = ' ';
	memcpy(p + TAG_HEX + 1, VARDATA_ANY(body), bodylen);
	return line;
}

/* Whether a line carries the right tag for place n; compares in constant time. */
static bool
line_is_intact(const crypto_generichash_state *archive, int64 n, const text *line)
{
	const char *p = VARDATA_ANY(line);
	size_t		len = VARSIZE_ANY_EXHDR(line);
	unsigned char expected[TAG_BYTES];
	unsigned char given[TAG_BYTES];
	size_t		decoded;

	if (len < TAG_HEX + 1 || p[TAG_HEX] != ' ' ||
		sodium_hex2bin(given, sizeof(given), p, TAG_HEX, NULL, &decoded, NULL) != 0 ||
		decoded != TAG_BYTES)
		return false;
	line_tag(archive, n, p + TAG_HEX + 1, len - TAG_HEX - 1, expected);
	return sodium_memcmp(expected, given, TAG_BYTES) == 0;
}

/*
 * payymo._archive_line(key_version integer, tenant_id bigint,
 *						archive_id text, line_no bigint, body text) RETURNS text
 */
Datum
payymo_archive_line(PG_FUNCTION_ARGS)
{
	crypto_generichash_state archive;
	text	   *line;

	archive_state_from_args(fcinfo, &archive);
	line = tagged_line(&archive, PG_GETARG_INT64(3), PG_GETARG_TEXT_PP(4));
	sodium_memzero(&archive, sizeof(archive));
	PG_RETURN_TEXT_P(line);
}

/*
 * Rows of one table become archive lines "R <table no> <record literal>"
 * as the query's executor hands them over: formatted as record_out()
 * would, tagged, and put into the result's tuplestore, which spills to
 * disk beyond work_mem, so that memory stays flat however many rows there
 * are.
 */
typedef struct ArchiveDest
{
	DestReceiver pub;
	Tuplestorestate *store;
	TupleDesc	store_desc;
	const crypto_generichash_state *archive;
	int64		n;				/* the next line's number */
	int32		table_no;
	FmgrInfo   *out;			/* output functions, per column */
	StringInfoData line;
	MemoryContext row_cxt;		/* reset after every row */
} ArchiveDest;

static void
archive_dest_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	ArchiveDest *dest = (ArchiveDest *) self;
	int			i;

	dest->out = palloc(sizeof(FmgrInfo) * Max(typeinfo->natts, 1));
	for (i = 0; i < typeinfo->natts; i++)
	{
		Oid			func;
		bool		varlena;

		getTypeOutputInfo(TupleDescAttr(typeinfo, i)->atttypid, &func, &varlena);
		fmgr_info(func, &dest->out[i]);
	}
	initStringInfo(&dest->line);
	dest->row_cxt = AllocSetContextCreate(CurrentMemoryContext, "payymo archive row",
										  ALLOCSET_DEFAULT_SIZES);
}

/*
 * A column's text in a record literal, quoted as record_out() quotes it:
 * when it is empty or holds a quote, backslash, parenthesis, comma or
 * white space, in double quotes, with quotes and backslashes doubled.
 */
static void
append_field(StringInfo buf, const char *value)
{
	static bool special[256];
	static bool special_ready = false;
	const unsigned char *p = (const unsigned char *) value;
	const unsigned char *run;

	if (!special_ready)
	{
		int			c;

		for (c = 0; c < 256; c++)
			special[c] = (c == '"' || c == '\\' || c == '(' || c == ')' || c == ',' || isspace(c));
		special_ready = true;
	}
	while (*p && !special[*p])
		p++;
	if (*p == '\0' && p != (const unsigned char *) value)
	{
		appendBinaryStringInfo(buf, value, p - (const unsigned char *) value);
		return;
	}
	appendStringInfoCharMacro(buf, '"');
	for (run = p = (const unsigned char *) value; *p; p++)
	{
		if (*p == '"' || *p == '\\')
		{
			/* the run up to and including this character, which starts the next run */
			appendBinaryStringInfo(buf, (const char *) run, p - run + 1);
			run = p;
		}
	}
	appendBinaryStringInfo(buf, (const char *) run, p - run);
	appendStringInfoCharMacro(buf, '"');
}

static bool
archive_dest_receive(TupleTableSlot *slot, DestReceiver *self)
{
	ArchiveDest *dest = (ArchiveDest *) self;
	StringInfo	buf = &dest->line;
	MemoryContext old = MemoryContextSwitchTo(dest->row_cxt);
	unsigned char tag[TAG_BYTES];
	text	   *line;
	Datum		value;
	bool		isnull = false;
	int			i;

	slot_getallattrs(slot);
	/* Room for the varlena header, the tag and a space, then the body. */
	resetStringInfo(buf);
	appendStringInfoSpaces(buf, VARHDRSZ + TAG_HEX + 1);
	appendStringInfo(buf, "R %d (", dest->table_no);
	for (i = 0; i < slot->tts_tupleDescriptor->natts; i++)
	{
		if (i > 0)
			appendStringInfoCharMacro(buf, ',');
		if (!slot->tts_isnull[i])
			append_field(buf, OutputFunctionCall(&dest->out[i], slot->tts_values[i]));
	}
	appendStringInfoCharMacro(buf, ')');

	line = (text *) buf->data;
	SET_VARSIZE(line, buf->len);
	line_tag(dest->archive, dest->n++, buf->data + VARHDRSZ + TAG_HEX + 1,
			 buf->len - VARHDRSZ - TAG_HEX - 1, tag);
	sodium_bin2hex(buf->data + VARHDRSZ, TAG_HEX + 1, tag, TAG_BYTES);
	buf->data[VARHDRSZ + TAG_HEX] = ' ';

	value = PointerGetDatum(line);
	tuplestore_putvalues(dest->store, dest->store_desc, &value, &isnull);
	MemoryContextSwitchTo(old);
	MemoryContextReset(dest->row_cxt);
	return true;
}

static void
archive_dest_shutdown(DestReceiver *self)
{
}

static void
archive_dest_destroy(DestReceiver *self)
{
}

/* Run an SPI query that must succeed; returns SPI_processed. */
static uint64
run(const char *sql, int nargs, Oid *types, Datum *values, int expected)
{
	int			ret = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

	if (ret != expected)
		elog(ERROR, "SPI_execute_with_args failed (%s): %s", SPI_result_code_string(ret), sql);
	return SPI_processed;
}

/* Column col of row 0 of the last SPI result, as a palloc'd string. */
static char *
result_text(int col)
{
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
}

static void
put_line(ArchiveDest *dest, const char *body)
{
	text	   *line = tagged_line(dest->archive, dest->n++, cstring_to_text(body));
	Datum		value = PointerGetDatum(line);
	bool		isnull = false;

	tuplestore_putvalues(dest->store, dest->store_desc, &value, &isnull);
	pfree(line);
}

/* The rows query as the table's owner, each row a line through dest. */
static uint64
put_rows(ArchiveDest *dest, Oid relid, const char *query)
{
	PayymoOwnerScope scope;
	uint64		before = dest->n;

	payymo_owner_enter(&scope, relid, false);
	PG_TRY();
	{
		SPIPlanPtr	plan = SPI_prepare(query, 0, NULL);
		/* Read-only: every table is read with the statement's snapshot. */
		SPIExecuteOptions options = {.dest = &dest->pub, .read_only = true};
		int			ret;

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", query);
		ret = SPI_execute_plan_extended(plan, &options);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "SPI_execute_plan_extended failed: %s", SPI_result_code_string(ret));
		SPI_freeplan(plan);
		payymo_owner_restore_settings(&scope);
	}
	PG_FINALLY();
	{
		payymo_owner_leave(&scope);
	}
	PG_END_TRY();
	return dest->n - before;
}

/*
 * payymo.export_tenant(tenant_id bigint) RETURNS SETOF text
 *
 * SECURITY DEFINER, with the text formats pinned by its SET clauses.  The
 * header, the manifest lines and the end line are built in SQL; the rows
 * of each table are read as the table's owner, under the tenant's context
 * (FORCE ROW LEVEL SECURITY applies, besides the WHERE clause), so that
 * nothing of the table's -- its policies, index expressions -- runs as
 * superuser.  All tables are read with one snapshot, the calling
 * statement's, so the archive is consistent across them.  Everything goes
 * into the one result tuplestore.
 */
Datum
payymo_export_tenant(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PayymoTenantId tenant = PG_GETARG_INT64(0);
	Oid			types[4] = {INT8OID, JSONBOID, TEXTOID, INT8OID};
	Datum		args[4] = {Int64GetDatum(tenant)};
	crypto_generichash_state archive;
	ArchiveDest dest = {
		.pub = {archive_dest_receive, archive_dest_startup, archive_dest_shutdown,
				archive_dest_destroy, DestTuplestore},
		.archive = &archive,
		.n = 1,
	};
	char	   *archive_id;
	Datum		counts;
	SPITupleTable *tables;
	uint64		ntables,
				t;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	dest.store = rsinfo->setResult;
	dest.store_desc = rsinfo->setDesc;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (run("SELECT FROM payymo.tenants WHERE id OPERATOR(pg_catalog.=) $1",
			1, types, args, SPI_OK_SELECT) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant " INT64_FORMAT " does not exist", tenant)));
	run("SELECT s.version, a.id, 'H ' OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object("
		"    'payymo_archive', 1, 'archive_id', a.id, 'tenant_id', x.id, 'slug', x.slug,"
		"    'key_version', s.version, 'key_fingerprint', s.fingerprint,"
		"    'payymo_version', e.extversion, 'database', pg_catalog.current_database(),"
		"    'created_at', pg_catalog.now())::text"
		"  FROM payymo.tenants x, payymo.key_status() s, pg_catalog.pg_extension e,"
		"       (SELECT pg_catalog.gen_random_uuid()::text AS id) a"
		" WHERE x.id OPERATOR(pg_catalog.=) $1 AND s.active"
		"   AND e.extname OPERATOR(pg_catalog.=) 'payymo'",
		1, types, args, SPI_OK_SELECT);
	archive_id = result_text(2);
	archive_state(&archive, pg_strtoint32(result_text(1)), tenant, archive_id);
	PG_TRY();
	{
		put_line(&dest, result_text(3));
		run("SELECT payymo._act_for_tenant($1)", 1, types, args, SPI_OK_SELECT);

		run("SELECT a.relid, 'T ' OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object("
			"    'table', a.k, 'name', a.name, 'tenant_column', a.tenant_column,"
			"    'columns', a.columns)::text, a.name,"
			"    pg_catalog.format('SELECT %s FROM %s WHERE %I OPERATOR(pg_catalog.=) %s',"
			"                      a.column_list, a.relid, a.tenant_column, $1)"
			"  FROM payymo._archive_tables() WITH ORDINALITY"
			"       AS a(relid, name, tenant_column, registry, columns, column_list, k)"
			" ORDER BY a.k",
			1, types, args, SPI_OK_SELECT);
		tables = SPI_tuptable;
		ntables = SPI_processed;
		counts = DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
		for (t = 0; t < ntables; t++)
		{
			bool		isnull;
			Oid			relid = DatumGetObjectId(SPI_getbinval(tables->vals[t], tables->tupdesc, 1, &isnull));
			char	   *name = SPI_getvalue(tables->vals[t], tables->tupdesc, 3);
			uint64		rows;

			put_line(&dest, SPI_getvalue(tables->vals[t], tables->tupdesc, 2));
			dest.table_no = (int32) (t + 1);
			rows = put_rows(&dest, relid, SPI_getvalue(tables->vals[t], tables->tupdesc, 4));
			args[1] = counts;
			args[2] = CStringGetTextDatum(name);
			args[3] = Int64GetDatum((int64) rows);
			run("SELECT $2 OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object($3, $4)",
				4, types, args, SPI_OK_SELECT);
			counts = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		}
		args[0] = Int64GetDatum(dest.n);
		args[1] = counts;
		run("SELECT 'E ' OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('lines', $1, 'rows', $2)::text",
			2, types, args, SPI_OK_SELECT);
		put_line(&dest, result_text(1));
	}
	PG_FINALLY();
	{
		sodium_memzero(&archive, sizeof(archive));
	}
	PG_END_TRY();

	ereport(LOG,
			(errmsg("payymo: tenant " INT64_FORMAT " exported by role \"%s\", archive %s, " INT64_FORMAT " lines",
					tenant, GetUserNameFromId(GetSessionUserId(), false), archive_id, dest.n - 1)));
	SPI_finish();
	return (Datum) 0;
}

/*
 * payymo._archive_first_bad(key_version integer, tenant_id bigint,
 *							 archive_id text) RETURNS bigint
 *
 * The first line of the staged archive (pg_temp.payymo_restore_lines, in
 * the order of n, which counts from 1) whose tag is wrong for its place,
 * or NULL when every line is intact.
 */
Datum
payymo_archive_first_bad(PG_FUNCTION_ARGS)
{
	crypto_generichash_state archive;
	int64		bad = 0;

	archive_state_from_args(fcinfo, &archive);
	PG_TRY();
	{
		Portal		portal;
		SPIPlanPtr	plan;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		plan = SPI_prepare("SELECT l.n, l.line FROM pg_temp.payymo_restore_lines l ORDER BY l.n",
						   0, NULL);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed");
		portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
		while (bad == 0)
		{
			uint64		i;

			SPI_cursor_fetch(portal, true, FETCH_BATCH);
			if (SPI_processed == 0)
				break;
			for (i = 0; i < SPI_processed && bad == 0; i++)
			{
				bool		nnull,
							lnull;
				int64		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
															SPI_tuptable->tupdesc, 1, &nnull));
				Datum		line = SPI_getbinval(SPI_tuptable->vals[i],
												 SPI_tuptable->tupdesc, 2, &lnull);

				if (lnull || !line_is_intact(&archive, n, DatumGetTextPP(line)))
					bad = n;
			}
			SPI_freetuptable(SPI_tuptable);
		}
		SPI_cursor_close(portal);
		SPI_finish();
	}
	PG_FINALLY();
	{
		sodium_memzero(&archive, sizeof(archive));
	}
	PG_END_TRY();

	if (bad == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(bad);
}
