/*
 * fuzz_keyfile.c -- libFuzzer harness for the key file parser
 * (payymo_keyfile_parse in src/keyfile.c, a pure function over a buffer).
 *
 * Beyond "no crash, never reads past len" (the input is an exact-size heap
 * copy with no terminating NUL, so ASan sees any over-read), every input
 * checks:
 *   1. the verdict, the reported line and the loaded keys agree with an
 *      independent reference parser written here from keyfile.h's contract;
 *   2. on success the key ring is consistent: every loaded version is in
 *      1..255 and appears once, nkeys counts them, newest is the highest;
 *   3. on success, writing the ring back out as "<v>:<hex>" lines (newest
 *      first, CRLF line ends) parses to the same ring;
 *   4. every result has a non-empty error detail that contains no hex key.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyfile.h"

#define CHECK(cond) \
	do { if (!(cond)) { fprintf(stderr, "property failed: %s (%s:%d)\n", \
								#cond, __FILE__, __LINE__); abort(); } } while (0)

static PayymoKeyring ring;
static PayymoKeyring ref_ring;
static PayymoKeyring again;

static int
ref_hex(unsigned char c)
{
	static const char digits[] = "0123456789abcdef0123456789ABCDEF";
	const char *p = (c != 0) ? memchr(digits, c, 32) : NULL;

	return p ? (int) ((p - digits) % 16) : -1;
}

/* Reference: one line (no '\n', no trailing '\r'), already non-empty. */
static PayymoKeyfileError
ref_line(const unsigned char *s, size_t n, PayymoKeyring *r)
{
	size_t		colon = n;
	size_t		i;
	long		version = 0;

	for (i = 0; i < n; i++)
		if (s[i] == 0)
			return PAYYMO_KEYFILE_MALFORMED;
	for (i = 0; i < n; i++)
		if (s[i] == ':')
		{
			colon = i;
			break;
		}
	if (colon == n)
		return PAYYMO_KEYFILE_MALFORMED;
	if (colon < 1 || colon > 3)
		return PAYYMO_KEYFILE_BAD_VERSION;
	for (i = 0; i < colon; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return PAYYMO_KEYFILE_BAD_VERSION;
		version = version * 10 + (s[i] - '0');
	}
	if (version < 1 || version > 255)
		return PAYYMO_KEYFILE_BAD_VERSION;
	if (n - colon - 1 != 64)
		return PAYYMO_KEYFILE_BAD_KEY;
	for (i = colon + 1; i < n; i++)
		if (ref_hex(s[i]) < 0)
			return PAYYMO_KEYFILE_BAD_KEY;
	if (r->present[version])
		return PAYYMO_KEYFILE_DUPLICATE;
	for (i = 0; i < 32; i++)
		r->key[version][i] = (unsigned char) (ref_hex(s[colon + 1 + 2 * i]) * 16 +
											  ref_hex(s[colon + 2 + 2 * i]));
	r->present[version] = true;
	r->nkeys++;
	if (version > r->newest)
		r->newest = (int) version;
	return PAYYMO_KEYFILE_OK;
}

static PayymoKeyfileError
ref_parse(const unsigned char *s, size_t len, PayymoKeyring *r, unsigned int *line)
{
	size_t		start = 0;

	memset(r, 0, sizeof(*r));
	*line = 0;
	while (start < len)
	{
		size_t		end = start;
		size_t		n;
		PayymoKeyfileError err;

		while (end < len && s[end] != '\n')
			end++;
		n = end - start;
		(*line)++;
		if (n > 0 && s[start + n - 1] == '\r')
			n--;
		if (n > 0 && s[start] != '#')
		{
			err = ref_line(s + start, n, r);
			if (err != PAYYMO_KEYFILE_OK)
				return err;
		}
		start = end + 1;
	}
	if (r->nkeys == 0)
	{
		*line = 0;
		return PAYYMO_KEYFILE_EMPTY;
	}
	return PAYYMO_KEYFILE_OK;
}

static void
check_ring(const PayymoKeyring *r)
{
	int			v;
	int			count = 0;
	int			max = 0;

	CHECK(!r->present[0]);
	for (v = PAYYMO_KEY_VERSION_MIN; v <= PAYYMO_KEY_VERSION_MAX; v++)
		if (r->present[v])
		{
			count++;
			max = v;
		}
	CHECK(count >= 1 && count == r->nkeys);
	CHECK(r->newest == max);
}

static void
check_detail(PayymoKeyfileError err)
{
	const char *d = payymo_keyfile_error_detail(err);
	size_t		run = 0;

	CHECK(d != NULL && d[0] != '\0');
	for (; *d; d++)
	{
		run = ref_hex((unsigned char) *d) >= 0 ? run + 1 : 0;
		CHECK(run < 8);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = malloc(size ? size : 1);
	unsigned int line = 12345;
	unsigned int ref_lineno;
	PayymoKeyfileError err;
	PayymoKeyfileError ref_err;
	int			v;

	if (text == NULL)
		abort();
	memcpy(text, data, size);
	err = payymo_keyfile_parse(text, size, &ring, &line);
	free(text);

	ref_err = ref_parse(data, size, &ref_ring, &ref_lineno);
	CHECK(err == ref_err);
	CHECK(line == ref_lineno);
	check_detail(err);
	if (err != PAYYMO_KEYFILE_OK)
		return 0;

	check_ring(&ring);
	CHECK(ring.nkeys == ref_ring.nkeys && ring.newest == ref_ring.newest);
	for (v = 0; v <= PAYYMO_KEY_VERSION_MAX; v++)
	{
		CHECK(ring.present[v] == ref_ring.present[v]);
		if (ring.present[v])
			CHECK(memcmp(ring.key[v], ref_ring.key[v], PAYYMO_KEY_BYTES) == 0);
	}

	/* Round trip: serialise newest first with CRLF, parse again. */
	{
		static char out[PAYYMO_KEY_VERSION_MAX * (3 + 1 + PAYYMO_KEY_HEX_CHARS + 2)];
		size_t		pos = 0;
		unsigned int line2;
		int			i;

		for (v = PAYYMO_KEY_VERSION_MAX; v >= PAYYMO_KEY_VERSION_MIN; v--)
		{
			if (!ring.present[v])
				continue;
			pos += (size_t) snprintf(out + pos, sizeof(out) - pos, "%d:", v);
			for (i = 0; i < PAYYMO_KEY_BYTES; i++)
				pos += (size_t) snprintf(out + pos, sizeof(out) - pos, "%02X", ring.key[v][i]);
			out[pos++] = '\r';
			out[pos++] = '\n';
		}
		CHECK(payymo_keyfile_parse(out, pos, &again, &line2) == PAYYMO_KEYFILE_OK);
		CHECK(memcmp(&again, &ring, sizeof(ring)) == 0);
	}
	return 0;
}
