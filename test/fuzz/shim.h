/*
 * shim.h -- the few PostgreSQL backend services a fuzz harness needs to run
 * backend C code outside a server (see shim.c).
 */
#ifndef PAYYMO_FUZZ_SHIM_H
#define PAYYMO_FUZZ_SHIM_H

#include <setjmp.h>

/*
 * ereport(ERROR) longjmps to shim_error_jmp while shim_error_armed is set
 * (and aborts otherwise, so an unexpected error is a finding); the error's
 * SQLSTATE is left in shim_sqlstate (0 when none was given).
 */
extern jmp_buf shim_error_jmp;
extern volatile int shim_error_armed;
extern int	shim_sqlstate;

/* payymo_security_event() calls so far. */
extern int	shim_security_events;

#endif							/* PAYYMO_FUZZ_SHIM_H */
