/*-------------------------------------------------------------------------
 *
 * alerts.c
 *	  The alerts worker: one background worker that runs
 *	  payymo.check_alerts() every payymo.alerts_interval seconds.
 *
 * Alert rules, samples and the evaluation itself are SQL (sql/alerts.sql),
 * so that a site without the worker can run check_alerts() from any
 * scheduler.  This file only provides the clock: one process for the
 * cluster, connected to payymo.alerts_database, so tenants' backends never
 * poll.  It starts once recovery has finished (a standby evaluates nothing;
 * its primary does), runs as the bootstrap superuser, and does nothing in a
 * database where payymo (0.3.0 or later) is not installed -- nor runs a
 * check_alerts() that is not the extension's.  An error in an
 * evaluation ends the worker with the error in the log; the postmaster
 * starts it again ten seconds later.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "payymo.h"

#define ALERTS_RESTART_SECONDS	10

static char *alerts_database = NULL;
static int	alerts_interval = 60;
static double alerts_storage_sample = 100.0;
static bool alerts_notify = true;

PGDLLEXPORT void payymo_alerts_main(Datum arg);

/* One evaluation in its own transaction, if payymo is installed. */
static void
alerts_check(void)
{
	bool		installed;
	bool		isnull;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "SELECT payymo.check_alerts()");

	/*
	 * The function must be payymo's: a role that may create schemas could
	 * otherwise have this superuser run a payymo.check_alerts() of its own
	 * in a database where the extension is not installed.
	 */
	if (SPI_execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_depend d"
					" JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid"
					" WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass"
					" AND d.objid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure('payymo.check_alerts()')"
					" AND d.deptype OPERATOR(pg_catalog.=) 'e'"
					" AND e.extname OPERATOR(pg_catalog.=) 'payymo')",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not look up payymo.check_alerts()");
	installed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	if (installed &&
		SPI_execute("SELECT pg_catalog.count(*) FROM payymo.check_alerts()",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "payymo.check_alerts() failed");

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
payymo_alerts_main(Datum arg)
{
	TimestampTz next;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);		/* ends an evaluation in progress too */
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(alerts_database, NULL, 0);
	pgstat_report_appname("payymo alerts");

	/*
	 * Whatever the database's or the role's defaults: check_alerts() writes,
	 * needs READ COMMITTED, and should not wait forever for a lock an idle
	 * session holds (the error says which, and the worker tries again).
	 */
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "10s", PGC_SUSET, PGC_S_OVERRIDE);

	next = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), alerts_interval * 1000L);
	for (;;)
	{
		long		wait_ms;

		wait_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(wait_ms, 1), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			next = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), alerts_interval * 1000L);
		}
		if (GetCurrentTimestamp() < next)
			continue;
		alerts_check();
		next = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), alerts_interval * 1000L);
	}
}

void
payymo_alerts_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("payymo.alerts_interval",
							"Seconds between two evaluations of the alert rules by the alerts worker.",
							NULL,
							&alerts_interval,
							60, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomRealVariable("payymo.alerts_storage_sample",
							 "Percentage of pages that storage_growth alerts read to measure storage.",
							 "100 counts every row; less samples pages, as payymo.tenant_storage() does.",
							 &alerts_storage_sample,
							 100.0, 0.01, 100.0,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("payymo.alerts_notify",
							 "Sends NOTIFY payymo_alert with the id of each alert raised.",
							 "Any role can LISTEN: it learns when alerts are raised, not about whom.",
							 &alerts_notify,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomStringVariable("payymo.alerts_database",
							   "Database in which the alerts worker runs payymo.check_alerts().",
							   "Empty: no alerts worker.",
							   &alerts_database,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	if (alerts_database[0] == '\0')
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = ALERTS_RESTART_SECONDS;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "payymo");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "payymo_alerts_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "payymo alerts");
	snprintf(worker.bgw_type, BGW_MAXLEN, "payymo alerts");
	RegisterBackgroundWorker(&worker);
}

/*
 * payymo._alert_warning(message text) RETURNS void
 *
 * check_alerts()' WARNING: one line in the server log, without the
 * PL/pgSQL context or the statement that a RAISE would add.
 */
PG_FUNCTION_INFO_V1(payymo_alert_warning);

Datum
payymo_alert_warning(PG_FUNCTION_ARGS)
{
	ereport(WARNING,
			(errmsg_internal("%s", text_to_cstring(PG_GETARG_TEXT_PP(0))),
			 errhidestmt(true),
			 errhidecontext(true)));
	PG_RETURN_VOID();
}
