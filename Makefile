# payymo — PGXS build.  `make demo` and `make test` work on a fresh machine:
# they install missing packages first, so this file must parse without pgxs.mk.

EXTENSION  = payymo
EXTVERSION = 0.1.0

MODULE_big = payymo
OBJS = \
	src/payymo.o \
	src/context.o \
	src/apikey.o \
	src/keyformat.o \
	src/events.o \
	src/stats.o \
	src/logctx.o \
	src/keyfile.o \
	src/crypto.o \
	src/trigger.o \
	src/tenancy.o

DATA = sql/payymo--$(EXTVERSION).sql

# pg_regress inputs, in order (no wildcards).
REGRESS = attributes context
REGRESS_OPTS = --load-extension=payymo

PG_CPPFLAGS = -std=c11
SHLIB_LINK  = -lsodium

# WERROR=1 (used by `make test`) turns any compiler warning into a failure.
ifeq ($(WERROR),1)
PG_CFLAGS += -Werror
endif

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

.DEFAULT_GOAL := all
.PHONY: deps deps-extended demo test test-extended bench

deps:
	@test/deps.sh

deps-extended:
	@test/deps.sh extended

demo: deps
	@test/demo.sh

test: deps
	@test/run.sh

# pgbench comparison with no isolation and hand-written RLS; quick (< 10 min),
# BENCH_FULL=1 for long rounds.  See README "Performance".
bench: deps-extended
	@bench/run.sh

# The reliability suite (pooler, drivers, soak, crash restart, fuzzing,
# sanitizers); bounded to about 12 minutes.
test-extended: deps-extended
	@test/run-extended.sh

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
all install installcheck clean:
	@echo "pgxs.mk not found: run 'make deps' (or 'make test' / 'make demo') first" >&2; exit 1
endif
