/* fuzz-sources: src/requests.c src/pidtab.c src/httpparse.c src/jsonw.c src/lathist.c src/stacks.c src/utf8.c src/util.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Request assembly from socket events, driven by bytes. The input is a header byte (caps and
 * options) and a list of events, each an opcode byte and its fields:
 *   0 read   pid tid fd flags len data[len]   (flags: 1 maybe, 2 cut: the read went on)
 *   1 data   pid tid fd flags len data[len]   (a later read of a split request line)
 *   2 write  pid tid fd len data[len]         (a write that starts a response)
 *   3 close  pid fd
 *   4 query  pid tid dt pattern site          (a statement of dt ms; pattern, site: 0..7)
 *   5 tick, 6 forget pid
 * each preceded by a time step byte (milliseconds). pid: 2 values, tid 4, fd 8; data up to 255
 * bytes, as the BPF side captures at most 256 bytes of a read or write. The seed corpus is real
 * traffic encoded so (tests/fuzz/seeds/mkseeds.py).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "requests.h"

#define MS 1000000ULL

struct in {
	const uint8_t *p;
	size_t n;
};

/* route templates a framework may give a response (requests__resp_route), or none */
static const char *const tmpls[4] = { NULL, "/items/{item_id}", "/{rest}", "/a/{b}/" };

static bool get(struct in *in, uint8_t *b)
{
	if (!in->n)
		return false;
	*b = *in->p++;
	in->n--;
	return true;
}

static const char *const pats[8] = {
	NULL, "SELECT ?", "SELECT * FROM author WHERE id = ?", "INSERT INTO t VALUES (...)",
	"UPDATE t SET a = ? WHERE id = ?", "BEGIN", "COMMIT", "SELECT \xff\xfe",
};
static const char *const sites[8] = {
	NULL, "index (/app/views.py:12)", "detail (/app/views.py:30)", "x (\"q\\\".py:1)",
	"<module> (/a.py:1)", "", "f (b.py:2)", "g (c.py:3)",
};

static uint64_t last_write(void *ctx, uint32_t pid, int32_t fd)
{
	return *(uint64_t *)ctx + fd;
}

/* Both processes one family (a uWSGI router and its worker: requests.h, "Relays"). */
static uint32_t family_of(void *ctx, uint32_t pid)
{
	(void)ctx;
	(void)pid;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct in in = { data, size };
	struct requests_opts o = {};
	struct requests_stats st;
	struct requests *r;
	struct jsonw *w;
	uint64_t ts = 1000 * MS;
	uint8_t h = 0, op, b, pid, tid, fd, flags, len;
	char *buf;

	if (!devnull)
		devnull = fopen("/dev/null", "w");
	get(&in, &h);
	/* small caps so that the fuzzer reaches them */
	o.max_conns = 1 + (h & 3);
	o.max_threads = 1 + (h >> 2 & 3);
	o.max_routes = 1 + (h >> 4 & 3) * 3;
	o.n1_threshold = 1 + (h >> 6 & 1) * 4;
	o.show_query = h & 0x80;
	o.idle_ns = 50 * MS;
	o.log = devnull;
	o.lines = devnull;
	o.last_write = (h & 1) ? last_write : NULL;
	o.family_of = (h & 2) ? family_of : NULL;
	o.ctx = &ts;
	r = requests__new(&o);
	if (!r)
		abort();
	while (get(&in, &b) && get(&in, &op)) {
		ts += b * MS;
		pid = tid = fd = flags = len = 0;
		switch (op % 7) {
		case 0:
		case 1:
		case 2:
			if (!get(&in, &pid) || !get(&in, &tid) || !get(&in, &fd) ||
			    (op % 7 != 2 && !get(&in, &flags)) || !get(&in, &len))
				goto done;
			if (len > in.n)
				len = in.n;
			/* exactly len bytes, so that ASan sees a read past them */
			buf = malloc(len ? len : 1);
			memcpy(buf, in.p, len);
			in.p += len;
			in.n -= len;
			if (op % 7 == 0)
				requests__req(r, pid & 1, tid & 3, fd & 7, ts, flags & 4 ? ts : 0, flags & 1, buf,
					      len, flags & 2 ? len + 100u : len);
			else if (op % 7 == 1)
				requests__data(r, pid & 1, tid & 3, fd & 7, ts, buf, len, flags & 2 ? len + 100u : len);
			else	/* four tasks, or none; a framework's route template, or none */
				requests__resp_route(r, pid & 1, tid & 3, fd & 7, ts, tid & 4 ? ts : 0, buf, len,
						     flags & 8 ? 0 : 0x1000u * (flags >> 4 & 3), tmpls[tid >> 3 & 3],
						     tid & 0x20);
			free(buf);
			break;
		case 3:
			if (!get(&in, &pid) || !get(&in, &fd))
				goto done;
			requests__close(r, pid & 1, fd & 7, ts, pid & 2 ? ts : 0);
			break;
		case 4: {
			uint8_t dt, pat, site;

			if (!get(&in, &pid) || !get(&in, &tid) || !get(&in, &dt) || !get(&in, &pat) ||
			    !get(&in, &site))
				goto done;
			requests__query_task(r, pid & 1, tid & 3, ts - dt * MS, ts, requests__intern(r, pats[pat & 7]),
					     requests__intern(r, sites[site & 7]), 0x1000u * (site >> 3 & 3));
			break;
		}
		case 5:
			requests__tick(r, ts);
			break;
		case 6:
			if (!get(&in, &pid))
				goto done;
			requests__forget_pid(r, pid & 1);
			break;
		}
	}
done:
	requests__flush(r);
	requests__stats(r, &st);
	w = jsonw__new(devnull);
	jsonw__start_object(w);
	jsonw__name(w, "requests");
	requests__write_json(r, w);
	jsonw__name(w, "n_plus_one");
	requests__write_n1_json(r, w);
	jsonw__name(w, "http");
	requests__write_summary_json(r, w);
	jsonw__end_object(w);
	if (jsonw__finish(w))
		abort();
	jsonw__free(w);
	requests__report(r, devnull, 10);
	requests__free(r);
	return 0;
}
