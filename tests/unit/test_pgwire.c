// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * PostgreSQL wire protocol: real traffic of psycopg2, psycopg 3, asyncpg and pg8000 recorded by
 * tests/tools/pgwire_capture.py (tests/data/pgwire/NAME.cap, with NAME.expect written from the
 * drivers' own results) replayed through framer and pairing, as recorded and re-chunked at every
 * split size; the classifier on the same traffic and on a corpus of other protocols; caps,
 * losses and the rarer messages on synthetic streams; fuzzer finds as regressions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <dirent.h>
#include "pgwire.h"

/* The fuzz target's entry point, to replay its seeds and finds here (no libFuzzer needed). */
#include "../fuzz/fuzz_pgwire.c"

#define DATA TEST_DATA_DIR "/pgwire/"
#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1
#define T(lit) (lit), sizeof(lit) - 1	/* a text, as chars */

/* ---- captures ---- */

struct rec {
	uint64_t ts;
	uint32_t conn;
	uint8_t dir;		/* 'C', 'S', 'O', 'E' */
	uint32_t len;
	const uint8_t *data;
};

struct cap {
	uint8_t *buf;
	struct rec *r;
	size_t n;
	uint32_t nconn;
};

static void cap_load(const char *name, struct cap *c)
{
	char path[512];
	FILE *f;
	long size;
	size_t off = 8, max = 0;

	snprintf(path, sizeof(path), DATA "%s.cap", name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	c->buf = malloc((size_t)size);
	assert_int_equal(fread(c->buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	assert_memory_equal(c->buf, "PGWCAP1\n", 8);
	c->r = NULL;
	c->n = 0;
	c->nconn = 0;
	while (off + 17 <= (size_t)size) {
		struct rec r;

		memcpy(&r.ts, c->buf + off, 8);
		memcpy(&r.conn, c->buf + off + 8, 4);
		r.dir = c->buf[off + 12];
		memcpy(&r.len, c->buf + off + 13, 4);
		r.data = c->buf + off + 17;
		off += 17 + r.len;
		assert_true(off <= (size_t)size);
		if (c->n == max) {
			max = max ? 2 * max : 256;
			c->r = realloc(c->r, max * sizeof(*c->r));
		}
		c->r[c->n++] = r;
		if (r.conn > c->nconn)
			c->nconn = r.conn;
	}
	assert_int_equal(off, (size_t)size);
}

static void cap_free(struct cap *c)
{
	free(c->buf);
	free(c->r);
}

/* ---- statements gathered ---- */

struct got {
	uint32_t conn;
	struct pgwire_stmt s;	/* text and name point into the copies below */
	char *text, *name;
};

struct results {
	struct got *v;
	size_t n, max;
};

struct sink {
	struct results *res;
	uint32_t conn;
};

static void on_stmt(void *ctx, const struct pgwire_stmt *s)
{
	struct sink *k = ctx;
	struct results *r = k->res;
	struct got *g;

	if (r->n == r->max) {
		r->max = r->max ? 2 * r->max : 64;
		r->v = realloc(r->v, r->max * sizeof(*r->v));
	}
	g = &r->v[r->n++];
	g->conn = k->conn;
	g->s = *s;
	g->text = s->text ? strndup(s->text, s->text_len) : NULL;
	g->name = s->name ? strdup(s->name) : NULL;
	assert_true(!s->text || strlen(s->text) == s->text_len);
}

static void results_free(struct results *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->v[i].text);
		free(r->v[i].name);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

struct replay {
	struct results res;
	struct pgwire_stats st;
	bool encrypted[16];
};

/*
 * Feeds a capture to one pgwire_conn per recorded connection. split 0: chunks as recorded;
 * else each run of records of one connection and direction is cut into split-byte chunks,
 * each stamped with the time of the record holding its first byte. from: the first record
 * fed; with midstream, connections start without their startup.
 */
static void replay_opts(const struct cap *c, size_t split, size_t from, const struct pgwire_conn_opts *base,
			struct replay *out)
{
	struct pgwire_conn *conn[16] = {};
	struct sink sinks[16];
	size_t i, j, k;

	memset(out, 0, sizeof(*out));
	assert_true(c->nconn < 16);
	for (i = from; i < c->n; i = j) {
		const struct rec *r = &c->r[i];
		struct pgwire_conn_opts o = *base;

		if (!conn[r->conn]) {
			sinks[r->conn] = (struct sink){ &out->res, r->conn };
			o.on_stmt = on_stmt;
			o.ctx = &sinks[r->conn];
			conn[r->conn] = pgwire_conn__new(&o);
			assert_non_null(conn[r->conn]);
		}
		if (r->dir == 'E') {
			pgwire_conn__close(conn[r->conn], r->ts);
			j = i + 1;
			continue;
		}
		if (r->dir == 'O') {
			j = i + 1;
			continue;
		}
		for (j = i + 1; j < c->n && c->r[j].conn == r->conn && c->r[j].dir == r->dir; j++)
			;
		if (!split) {
			for (k = i; k < j; k++)
				pgwire_conn__feed(conn[r->conn], r->dir == 'C' ? PGWIRE_CLIENT : PGWIRE_SERVER,
						  c->r[k].data, c->r[k].len, c->r[k].ts);
			continue;
		} else {
			size_t total = 0, pos = 0, rk = i, roff = 0;
			uint8_t *run;

			for (k = i; k < j; k++)
				total += c->r[k].len;
			run = malloc(total ? total : 1);
			for (k = i; k < j; k++) {
				memcpy(run + pos, c->r[k].data, c->r[k].len);
				pos += c->r[k].len;
			}
			for (pos = 0; pos < total; pos += split) {
				size_t n = total - pos < split ? total - pos : split;

				while (rk < j && roff + c->r[rk].len <= pos)
					roff += c->r[rk++].len;
				pgwire_conn__feed(conn[r->conn], r->dir == 'C' ? PGWIRE_CLIENT : PGWIRE_SERVER,
						  run + pos, n, c->r[rk < j ? rk : j - 1].ts);
			}
			free(run);
		}
	}
	for (i = 0; i < 16; i++) {
		struct pgwire_stats st;

		if (!conn[i])
			continue;
		pgwire_conn__stats(conn[i], &st);
		pgwire_stats__add(&out->st, &st);
		out->encrypted[i] = pgwire_conn__encrypted(conn[i]);
		pgwire_conn__free(conn[i]);
	}
}

static void replay(const struct cap *c, size_t split, struct replay *out)
{
	struct pgwire_conn_opts o = {};

	replay_opts(c, split, 0, &o, out);
}

/* ---- expectations ---- */

struct exp {
	uint32_t conn;
	char status[16], tag[40], sqlstate[8], kind[16], text[128];
	int64_t rows;
};

struct expect {
	struct exp *v;
	size_t n;
	uint32_t tls[16];
	size_t ntls;
};

static void expect_load(const char *name, struct expect *e)
{
	char path[512], line[1024];
	FILE *f;

	snprintf(path, sizeof(path), DATA "%s.expect", name);
	f = fopen(path, "r");
	assert_non_null(f);
	memset(e, 0, sizeof(*e));
	while (fgets(line, sizeof(line), f)) {
		char *fl[7], *p = line, rows[32];
		struct exp x = {};
		int i;

		line[strcspn(line, "\n")] = 0;
		if (line[0] == '#' || !line[0])
			continue;
		if (!strncmp(line, "tls\t", 4)) {
			e->tls[e->ntls++] = (uint32_t)atoi(line + 4);
			continue;
		}
		for (i = 0; i < 7; i++) {
			fl[i] = strsep(&p, "\t");
			assert_non_null(fl[i]);
		}
		x.conn = (uint32_t)atoi(fl[0]);
		snprintf(x.status, sizeof(x.status), "%s", fl[1]);
		snprintf(rows, sizeof(rows), "%s", fl[2]);
		x.rows = rows[0] == '-' ? -1 : atoll(rows);
		snprintf(x.tag, sizeof(x.tag), "%s", strcmp(fl[3], "-") ? fl[3] : "");
		snprintf(x.sqlstate, sizeof(x.sqlstate), "%s", strcmp(fl[4], "-") ? fl[4] : "");
		snprintf(x.kind, sizeof(x.kind), "%s", fl[5]);
		snprintf(x.text, sizeof(x.text), "%s", fl[6]);
		e->v = realloc(e->v, (e->n + 1) * sizeof(*e->v));
		e->v[e->n++] = x;
	}
	fclose(f);
}

/* The statements of a replay against the expectations, connection by connection, in order. */
static void check_expect(const struct expect *e, const struct replay *rp, const char *what)
{
	size_t i, j = 0;
	uint32_t conn;

	for (conn = 1; conn < 16; conn++) {
		size_t gi = 0;

		for (i = 0; i < e->n; i++) {
			const struct exp *x = &e->v[i];
			const struct got *g = NULL;

			if (x->conn != conn)
				continue;
			for (; gi < rp->res.n; gi++)
				if (rp->res.v[gi].conn == conn)
					break;
			if (gi == rp->res.n)
				fail_msg("%s: conn %u: missing statement %zu: %s", what, conn, i, x->text);
			g = &rp->res.v[gi++];
			j++;
			if (strcmp(pgwire__status_name(g->s.status), x->status) || g->s.rows != x->rows ||
			    strcmp(g->s.tag, x->tag) || strcmp(g->s.sqlstate, x->sqlstate) ||
			    strcmp(pgwire__kind_name(g->s.kind), x->kind))
				fail_msg("%s: conn %u: '%s': got %s rows %lld tag '%s' sqlstate '%s' kind %s, "
					 "expected %s rows %lld tag '%s' sqlstate '%s' kind %s", what, conn, x->text,
					 pgwire__status_name(g->s.status), (long long)g->s.rows, g->s.tag,
					 g->s.sqlstate, pgwire__kind_name(g->s.kind), x->status,
					 (long long)x->rows, x->tag, x->sqlstate, x->kind);
			if (!strcmp(x->kind, "unknown")) {
				assert_string_equal(g->name, x->text);
			} else {
				assert_non_null(g->text);
				if (strncmp(g->text, x->text, strlen(x->text)))
					fail_msg("%s: text '%.100s' expected '%s'", what, g->text, x->text);
				if (strlen(x->text) < 100)
					assert_int_equal(g->s.text_len, strlen(x->text));
			}
			/* from the client chunk of its first byte to a later server chunk */
			assert_true(g->s.end_ns > g->s.start_ns);
			if (!strcmp(x->status, "ok"))
				assert_true(g->s.txn == 'I' || g->s.txn == 'T');
		}
		for (; gi < rp->res.n; gi++)
			if (rp->res.v[gi].conn == conn)
				fail_msg("%s: conn %u: unexpected statement '%s' (%s)", what, conn,
					 rp->res.v[gi].text ? rp->res.v[gi].text : rp->res.v[gi].name,
					 pgwire__status_name(rp->res.v[gi].s.status));
	}
	assert_int_equal(j, e->n);
	assert_int_equal(rp->res.n, e->n);
	for (i = 0; i < e->ntls; i++)
		assert_true(rp->encrypted[e->tls[i]]);
}

static const char *const small_caps[] = { "psycopg2_simple", "psycopg2_cursor_notify", "psycopg3",
					   "asyncpg", "pg8000", "cursors", "sslprefer_plain", "tls" };

static void check_clean(const struct replay *rp, const char *what)
{
	if (rp->st.lost || rp->st.unpaired || rp->st.bad_payload || rp->st.dropped_names ||
	    rp->st.dropped_stmts)
		fail_msg("%s: lost %llu unpaired %llu bad %llu dropped %llu/%llu", what,
			 (unsigned long long)rp->st.lost, (unsigned long long)rp->st.unpaired,
			 (unsigned long long)rp->st.bad_payload, (unsigned long long)rp->st.dropped_names,
			 (unsigned long long)rp->st.dropped_stmts);
}

/* Latency ends: a client chunk of the statement's connection, then a later server chunk. */
static void check_times(const struct cap *c, const struct replay *rp)
{
	size_t i, k;

	for (i = 0; i < rp->res.n; i++) {
		const struct got *g = &rp->res.v[i];
		bool start = false, end = false;

		for (k = 0; k < c->n; k++) {
			if (c->r[k].conn != g->conn)
				continue;
			start |= c->r[k].dir == 'C' && c->r[k].ts == g->s.start_ns;
			end |= c->r[k].dir == 'S' && c->r[k].ts == g->s.end_ns;
		}
		assert_true(start);
		assert_true(end);
	}
}

static void test_captures_as_recorded(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(small_caps) / sizeof(small_caps[0]); i++) {
		struct cap c;
		struct expect e;
		struct replay rp;

		cap_load(small_caps[i], &c);
		expect_load(small_caps[i], &e);
		replay(&c, 0, &rp);
		check_expect(&e, &rp, small_caps[i]);
		check_clean(&rp, small_caps[i]);
		check_times(&c, &rp);
		if (!strcmp(small_caps[i], "psycopg2_simple")) {
			size_t k;

			assert_int_equal(rp.st.cancel_requests, 1);
			/* pg_sleep(5) cancelled by the script after 0.3 s */
			for (k = 0; k < rp.res.n; k++)
				if (rp.res.v[k].s.status == PGWIRE_CANCELLED)
					break;
			assert_true(k < rp.res.n);
			assert_in_range(rp.res.v[k].s.end_ns - rp.res.v[k].s.start_ns, 250000000, 2000000000);
		}
		if (!strcmp(small_caps[i], "psycopg2_cursor_notify"))
			assert_int_equal(rp.st.notifications, 2);
		results_free(&rp.res);
		free(e.v);
		cap_free(&c);
	}
}

/* Every split size from 1 byte to beyond the longest run of one direction. */
static void test_captures_rechunked(void **state)
{
	size_t i, split, total = 0;

	for (i = 0; i < sizeof(small_caps) / sizeof(small_caps[0]); i++) {
		struct cap c;
		struct expect e;
		size_t k, run = 0, maxrun = 0;

		cap_load(small_caps[i], &c);
		expect_load(small_caps[i], &e);
		for (k = 0; k < c.n; k++) {
			if (k && c.r[k].conn == c.r[k - 1].conn && c.r[k].dir == c.r[k - 1].dir)
				run += c.r[k].len;
			else
				run = c.r[k].len;
			if (run > maxrun)
				maxrun = run;
		}
		for (split = 1; split <= maxrun + 1; split++) {
			struct replay rp;
			char what[128];

			snprintf(what, sizeof(what), "%s split %zu", small_caps[i], split);
			replay(&c, split, &rp);
			check_expect(&e, &rp, what);
			check_clean(&rp, what);
			results_free(&rp.res);
			total++;
		}
		free(e.v);
		cap_free(&c);
	}
	print_message("re-chunked replays: %zu\n", total);
}

/* A 100 kB statement and a 100,000-row result: as recorded and at a few split sizes. */
static void test_big(void **state)
{
	static const size_t splits[] = { 0, 1, 3, 1000, 16384 };
	struct cap c;
	struct expect e;
	size_t i;

	cap_load("big", &c);
	expect_load("big", &e);
	for (i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
		struct replay rp;

		replay(&c, splits[i], &rp);
		check_expect(&e, &rp, "big");
		check_clean(&rp, "big");
		assert_true(rp.res.v[0].s.text_cut);
		assert_int_equal(rp.res.v[0].s.text_len, 1024);
		assert_int_equal(rp.res.v[1].s.datarows, 100000);
		results_free(&rp.res);
	}
	free(e.v);
	cap_free(&c);
}

/* ---- the classifier ---- */

static void test_classifier_on_captures(void **state)
{
	size_t i, k, cli = 0, cli_mid = 0, srv = 0, srv_mid = 0, srv_tail = 0;

	for (i = 0; i < sizeof(small_caps) / sizeof(small_caps[0]); i++) {
		struct cap c;
		bool first[16] = {}, tls[16] = {};

		cap_load(small_caps[i], &c);
		for (k = 0; k < c.n; k++) {
			const struct rec *r = &c.r[k];
			enum pgwire_class cl;

			if (r->dir == 'C') {
				cl = pgwire__classify_client(r->data, r->len);
				if (!first[r->conn]) {
					first[r->conn] = true;
					assert_true(cl == PGWIRE_CLASS_STARTUP || cl == PGWIRE_CLASS_SSL_REQUEST ||
						    cl == PGWIRE_CLASS_CANCEL);
					if (cl == PGWIRE_CLASS_SSL_REQUEST && !strcmp(small_caps[i], "tls"))
						tls[r->conn] = true;
					continue;
				}
				if (tls[r->conn] || cl == PGWIRE_CLASS_STARTUP)
					continue;
				cli++;
				cli_mid += cl == PGWIRE_CLASS_MIDSTREAM;
			} else if (r->dir == 'S' && !tls[r->conn] && r->len > 1) {
				cl = pgwire__classify_server(r->data, r->len);
				srv++;
				srv_mid += cl == PGWIRE_CLASS_MIDSTREAM;
				srv_tail += cl == PGWIRE_CLASS_READY_TAIL;
			}
		}
		cap_free(&c);
	}
	print_message("client writes recognized midstream: %zu of %zu; server reads: %zu chains + %zu "
		      "ReadyForQuery tails of %zu\n", cli_mid, cli, srv_mid, srv_tail, srv);
	/* misses: writes of more than PGWIRE_CHAIN_MAX messages (psycopg 3's pipelines) */
	assert_true(cli_mid >= cli * 95 / 100);
	assert_true(srv_mid + srv_tail >= srv * 9 / 10);
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

struct fp {
	size_t tried, client, server;
};

static void fp_one(struct fp *fp, const uint8_t *b, size_t n)
{
	fp->tried++;
	fp->client += pgwire__classify_client(b, n) != PGWIRE_CLASS_NOT_PG;
	fp->server += pgwire__classify_server(b, n) != PGWIRE_CLASS_NOT_PG;
}

/* Other protocols must not look like PostgreSQL: the figures in pgwire.h come from here. */
static void test_false_positives(void **state)
{
	static const char *const texts[] = {
		"*1\r\n$4\r\nPING\r\n", "+PONG\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "+OK\r\n",
		"$-1\r\n", ":42\r\n", "-ERR unknown command 'x'\r\n", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"$5\r\nhello\r\n", "*0\r\n",
		"{\"a\": 1}\n", "[1, 2, 3]\n", "{\"event\":\"login\",\"user\":\"ann\",\"ok\":true}\n",
		"\"str\"\n", "null\n", "{}\n{}\n{}\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
		"PUT /y HTTP/1.1\r\n\r\n", "DELETE /z HTTP/1.1\r\n\r\n", "HEAD / HTTP/1.0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/1.0 404 Not Found\r\n\r\n",
		"SSH-2.0-OpenSSH_9.2p1\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	};
	static const uint8_t pg_types[] = "QPBEDSHCXdcfFZTRKNAIVGW123nst";
	struct fp http = {}, tls = {}, txt = {}, rnd = {}, rnd_pg = {};
	uint8_t buf[600];
	struct cap c;
	size_t i, k;

	cap_load("http", &c);
	for (k = 0; k < c.n; k++)
		if (c.r[k].len)
			fp_one(&http, c.r[k].data, c.r[k].len);
	cap_free(&c);
	cap_load("tls", &c);
	for (k = 3; k < c.n; k++)	/* after the SSLRequest and its 'S': TLS records */
		if (c.r[k].len)
			fp_one(&tls, c.r[k].data, c.r[k].len);
	cap_free(&c);
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		fp_one(&txt, (const uint8_t *)texts[i], strlen(texts[i]));
	for (i = 0; i < 20000; i++) {
		size_t n = 1 + rng() % sizeof(buf);

		for (k = 0; k < n; k++)
			buf[k] = (uint8_t)rng();
		fp_one(&rnd, buf, n);
		buf[0] = pg_types[rng() % (sizeof(pg_types) - 1)];
		fp_one(&rnd_pg, buf, n);
	}
	print_message("false positives (client/server of tried): HTTP %zu/%zu of %zu, TLS %zu/%zu of %zu, "
		      "RESP+JSON+text %zu/%zu of %zu, random %zu/%zu of %zu, random with a type byte "
		      "%zu/%zu of %zu\n", http.client, http.server, http.tried, tls.client, tls.server,
		      tls.tried, txt.client, txt.server, txt.tried, rnd.client, rnd.server, rnd.tried,
		      rnd_pg.client, rnd_pg.server, rnd_pg.tried);
	assert_true(http.tried >= 12);
	assert_int_equal(http.client + http.server, 0);
	assert_int_equal(tls.client + tls.server, 0);
	assert_int_equal(txt.client + txt.server, 0);
	assert_int_equal(rnd.client + rnd.server, 0);
	assert_int_equal(rnd_pg.client + rnd_pg.server, 0);
}

/* ---- synthetic streams ---- */

struct bb {
	uint8_t b[8192];
	size_t n;
};

static void bb_msg(struct bb *b, uint8_t type, const uint8_t *p, size_t n)
{
	uint32_t len = (uint32_t)n + 4;

	b->b[b->n++] = type;
	b->b[b->n++] = (uint8_t)(len >> 24);
	b->b[b->n++] = (uint8_t)(len >> 16);
	b->b[b->n++] = (uint8_t)(len >> 8);
	b->b[b->n++] = (uint8_t)len;
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static struct pgwire_conn *conn_new(struct results *res, struct sink *k, bool midstream, uint32_t names,
				    uint32_t inflight)
{
	struct pgwire_conn_opts o = { .midstream = midstream, .max_names = names, .max_inflight = inflight,
				      .on_stmt = on_stmt, .ctx = k };

	*k = (struct sink){ res, 1 };
	return pgwire_conn__new(&o);
}

static void feed(struct pgwire_conn *c, enum pgwire_dir d, struct bb *b, uint64_t ts)
{
	pgwire_conn__feed(c, d, b->b, b->n, ts);
	b->n = 0;
}

/* Execute of a statement prepared before tracing: the asyncpg capture from its second fetch. */
static void test_midstream_unknown_prepared(void **state)
{
	struct pgwire_conn_opts o = { .midstream = true };
	struct cap c;
	struct replay rp;
	char stmt[64];
	size_t k;

	cap_load("asyncpg", &c);
	for (k = 0; k < c.n; k++)	/* the first Bind of __asyncpg_stmt_1__ */
		if (c.r[k].dir == 'C' && c.r[k].len && c.r[k].data[0] == 'B')
			break;
	assert_true(k < c.n);
	assert_int_equal(pgwire__classify_client(c.r[k].data, c.r[k].len), PGWIRE_CLASS_MIDSTREAM);
	/* Bind: type, length, portal name "" and the statement's name (asyncpg numbers them) */
	snprintf(stmt, sizeof(stmt), "%s", (const char *)c.r[k].data + 6);
	assert_non_null(strstr(stmt, "__asyncpg_stmt_"));
	replay_opts(&c, 0, k, &o, &rp);
	assert_true(rp.res.n >= 9);
	for (k = 0; k < 3; k++) {
		assert_int_equal(rp.res.v[k].s.kind, PGWIRE_PREPARED_UNKNOWN);
		assert_string_equal(rp.res.v[k].name, stmt);
		assert_null(rp.res.v[k].text);
		assert_int_equal(rp.res.v[k].s.rows, (int64_t)k + 2);
	}
	assert_int_equal(rp.res.v[3].s.kind, PGWIRE_EXTENDED);
	assert_string_equal(rp.res.v[3].text, "INSERT INTO t VALUES ($1, $2)");
	assert_int_equal(rp.st.unknown_prepared, 3);
	results_free(&rp.res);
	cap_free(&c);
}

/*
 * A statement prepared before tracing, its text learned from the driver (pgwiretrace.c's
 * driver_text) before the Bind that names it: its Executes carry that text from then on, until a
 * Close forgets it; names the table has no room for, and the unnamed statement, are refused.
 */
static void test_learned_text(void **state)
{
	struct results res = {};
	struct sink k;
	struct pgwire_conn *c = conn_new(&res, &k, true, 2, 0);
	struct pgwire_stats st;
	struct bb b = {};
	unsigned i;

	assert_false(pgwire_conn__knows(c, "s1"));
	for (i = 0; i < 3; i++) {
		bb_msg(&b, 'B', S("\0s1\0\0\0\0\0\0\0"));
		bb_msg(&b, 'E', S("\0\0\0\0\0"));
		bb_msg(&b, 'S', S(""));
		feed(c, PGWIRE_CLIENT, &b, 10 * i + 1);
		bb_msg(&b, '2', S(""));
		bb_msg(&b, 'C', S("SELECT 1\0"));
		bb_msg(&b, 'Z', S("I"));
		feed(c, PGWIRE_SERVER, &b, 10 * i + 2);
		if (i == 0)	/* the first one named only: then the driver's text */
			assert_int_equal(pgwire_conn__learn(c, "s1", "SELECT $1::int + 5", 18, false), 0);
	}
	assert_true(pgwire_conn__knows(c, "s1"));
	assert_int_equal(res.n, 3);
	assert_int_equal(res.v[0].s.kind, PGWIRE_PREPARED_UNKNOWN);
	assert_null(res.v[0].text);
	for (i = 1; i < 3; i++) {
		assert_int_equal(res.v[i].s.kind, PGWIRE_EXTENDED);
		assert_string_equal(res.v[i].text, "SELECT $1::int + 5");
		assert_string_equal(res.v[i].name, "s1");
		assert_int_equal(res.v[i].s.rows, 1);
	}
	/* cut to the text cap (1024 by default) */
	{
		char big[2000];

		memset(big, 'x', sizeof(big));
		assert_int_equal(pgwire_conn__learn(c, "s2", big, sizeof(big), false), 0);
	}
	assert_int_equal(pgwire_conn__learn(c, "s3", "SELECT 3", 8, false), -ENOSPC);
	assert_int_equal(pgwire_conn__learn(c, "", "SELECT 4", 8, false), -EINVAL);
	assert_false(pgwire_conn__knows(c, "s3"));
	bb_msg(&b, 'B', S("\0s2\0\0\0\0\0\0\0"));
	bb_msg(&b, 'E', S("\0\0\0\0\0"));
	bb_msg(&b, 'C', S("Ss1\0"));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 41);
	bb_msg(&b, '2', S(""));
	bb_msg(&b, 'C', S("SELECT 1\0"));
	bb_msg(&b, '3', S(""));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 42);
	assert_int_equal(res.n, 4);
	assert_int_equal(res.v[3].s.text_len, 1024);
	assert_true(res.v[3].s.text_cut);
	assert_false(pgwire_conn__knows(c, "s1"));	/* closed */
	pgwire_conn__stats(c, &st);
	assert_int_equal(st.learned, 2);
	assert_int_equal(st.unknown_prepared, 1);
	assert_int_equal(st.dropped_names, 1);
	pgwire_conn__free(c);
	results_free(&res);
}

/*
 * What the wire's reader checks before it gives a name a driver's text (pgwiretrace.c's
 * driver_text): the statement a Bind or Parse names, the values a Bind carries, the parameters a
 * text refers to (not those in strings, quoted names, comments or dollar quotes).
 */
static void test_bind_and_params(void **state)
{
	char name[PGWIRE_NAME_MAX];
	char big[200];

	assert_true(pgwire__stmt_name('B', S("p1\0__asyncpg_stmt_1__\0\0\0\0\x02\0\0\0\0"), name));
	assert_string_equal(name, "__asyncpg_stmt_1__");
	assert_true(pgwire__stmt_name('P', S("_pg3_0\0SELECT $1\0\0\0"), name));
	assert_string_equal(name, "_pg3_0");
	assert_false(pgwire__stmt_name('B', S("p1\0_pg3_"), name));	/* cut in the name */
	assert_false(pgwire__stmt_name('E', S("\0\0\0\0\0"), name));
	memset(big, 'n', sizeof(big));
	big[0] = 0;	/* the unnamed portal, then a name longer than any kept: cut as the connection cuts it */
	big[sizeof(big) - 1] = 0;
	assert_true(pgwire__stmt_name('B', (const uint8_t *)big, sizeof(big), name));
	assert_int_equal(strlen(name), PGWIRE_NAME_MAX - 1);

	/* portal, statement, 2 format codes, 2 values */
	assert_int_equal(pgwire__bind_params(S("\0s\0\0\x02\0\x01\0\x01\0\x02\0\0\0\x01" "5")), 2);
	assert_int_equal(pgwire__bind_params(S("\0s\0\0\0\0\0\0\0")), 0);
	assert_int_equal(pgwire__bind_params(S("\0s\0\0\x02\0\x01")), -1);	/* cut in the formats */
	assert_int_equal(pgwire__bind_params(S("\0s")), -1);

	assert_int_equal(pgwire__max_param(T("SELECT 1")), 0);
	assert_int_equal(pgwire__max_param(T("SELECT $1::int + $12, $3")), 12);
	assert_int_equal(pgwire__max_param(T("SELECT '$5', \"a$7\", $2 -- $9\n, x$8 /* $6 */")), 2);
	assert_int_equal(pgwire__max_param(T("SELECT $$ $4 $$, $fn$ $5 $fn$, $1")), 1);
	assert_int_equal(pgwire__max_param(T("SELECT 'it''s $3', $2")), 2);
	assert_int_equal(pgwire__max_param(T("SELECT $1, '$2")), 1);		/* cut in a string */
	assert_int_equal(pgwire__max_param(T("SELECT $tag$ never closed $1")), 0);
	assert_int_equal(pgwire__max_param(T("$1")), 1);
}

/* Garbage in the client stream: lost, statements in flight end LOST, resync on a clean write. */
static void test_lost_and_resync(void **state)
{
	struct results res = {};
	struct sink k;
	struct pgwire_conn *c = conn_new(&res, &k, true, 0, 0);
	struct pgwire_stats st;
	struct bb b = {};

	bb_msg(&b, 'Q', S("SELECT 1\0"));
	feed(c, PGWIRE_CLIENT, &b, 10);
	pgwire_conn__feed(c, PGWIRE_CLIENT, S("\x01\x02garbage that is not pg"), 11);
	bb_msg(&b, 'C', S("SELECT 1\0"));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 12);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.v[0].s.status, PGWIRE_LOST);
	/* a write that ends with Sync but starts mid-message: typed again from the next write */
	pgwire_conn__feed(c, PGWIRE_CLIENT, S("tail of something\0S\0\0\0\x04"), 13);
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 14);	/* the server side is synced: pairing starts again */
	bb_msg(&b, 'Q', S("SELECT 2\0"));
	feed(c, PGWIRE_CLIENT, &b, 20);
	bb_msg(&b, 'T', S("\0\0"));
	bb_msg(&b, 'C', S("SELECT 0\0"));
	bb_msg(&b, 'Z', S("T"));
	feed(c, PGWIRE_SERVER, &b, 25);
	assert_int_equal(res.n, 2);
	assert_string_equal(res.v[1].text, "SELECT 2");
	assert_int_equal(res.v[1].s.status, PGWIRE_OK);
	assert_int_equal(res.v[1].s.rows, 0);
	assert_int_equal(res.v[1].s.txn, 'T');
	assert_int_equal(res.v[1].s.end_ns - res.v[1].s.start_ns, 5);
	pgwire_conn__stats(c, &st);
	assert_int_equal(st.lost, 1);
	assert_int_equal(st.resyncs, 1);
	pgwire_conn__free(c);
	results_free(&res);
}

/*
 * A Parse seen while pairing waits after a loss still names its text; a deleted name leaves
 * nothing behind for the next one in its slot (the fuzzer found a stale entry's garbage text:
 * tests/data/pgwire/fuzz/stale-name-entry).
 */
static void test_parse_during_desync(void **state)
{
	struct results res = {};
	struct sink k;
	struct pgwire_conn *c = conn_new(&res, &k, true, 0, 0);
	struct bb b = {};

	bb_msg(&b, 'P', S("a\0SELECT 1\0\0\0"));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 1);
	bb_msg(&b, 'C', S("Sa\0"));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 2);
	pgwire_conn__feed(c, PGWIRE_CLIENT, S("\xff\xff\xff\xff\xff\xff"), 3);	/* lost */
	bb_msg(&b, 'P', S("b\0SELECT 2\0\0\0"));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 4);		/* a chain: framed again, pairing still waits */
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 5);		/* pairing again */
	bb_msg(&b, 'B', S("\0b\0\0\0\0\0\0\0"));
	bb_msg(&b, 'E', S("\0\0\0\0\0"));
	bb_msg(&b, 'S', S(""));
	bb_msg(&b, 'B', S("\0a\0\0\0\0\0\0\0"));
	bb_msg(&b, 'E', S("\0\0\0\0\0"));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 6);
	bb_msg(&b, '2', S(""));
	bb_msg(&b, 'C', S("SELECT 1\0"));
	bb_msg(&b, 'Z', S("I"));
	bb_msg(&b, 'E', S("SERROR\0VERROR\0C26000\0Mprepared statement \"a\" does not exist\0\0"));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 7);
	assert_int_equal(res.n, 2);
	assert_int_equal(res.v[0].s.kind, PGWIRE_EXTENDED);
	assert_string_equal(res.v[0].text, "SELECT 2");
	assert_int_equal(res.v[1].s.kind, PGWIRE_PREPARED_UNKNOWN);	/* closed before */
	assert_string_equal(res.v[1].name, "a");
	assert_int_equal(res.v[1].s.status, PGWIRE_ERROR);
	assert_string_equal(res.v[1].s.sqlstate, "26000");
	pgwire_conn__free(c);
	results_free(&res);
}

/* GSSENCRequest answered 'G'; SSLRequest split across chunks answered 'N', then plaintext. */
static void test_startup_requests(void **state)
{
	struct results res = {};
	struct sink k;
	struct pgwire_conn *c = conn_new(&res, &k, false, 0, 0);
	struct bb b = {};

	pgwire_conn__feed(c, PGWIRE_CLIENT, S("\0\0\0\x08\x04\xd2\x16\x30"), 1);
	pgwire_conn__feed(c, PGWIRE_SERVER, S("G"), 2);
	assert_true(pgwire_conn__encrypted(c));
	pgwire_conn__feed(c, PGWIRE_CLIENT, S("\x16\x03\x01 whatever"), 3);
	assert_int_equal(res.n, 0);
	{
		/* records from a source that sees the plaintext (an SSL_write/SSL_read probe) */
		const uint8_t *sel = (const uint8_t *)"SELECT 1";	/* with its NUL: 9 bytes */
		struct pgwire_msg q = { .type = 'Q', .len = 13, .data = sel, .data_len = 9, .ts = 4 };
		struct pgwire_msg cc = { .type = 'C', .len = 13, .data = sel, .data_len = 9, .ts = 5 };
		struct pgwire_msg z = { .type = 'Z', .len = 5, .data = (const uint8_t *)"I", .data_len = 1,
					.ts = 6, .end_ts = 7 };

		pgwire_conn__msg(c, PGWIRE_CLIENT, &q);
		pgwire_conn__msg(c, PGWIRE_SERVER, &cc);
		pgwire_conn__msg(c, PGWIRE_SERVER, &z);
	}
	assert_int_equal(res.n, 1);
	assert_true(res.v[0].s.tls);
	assert_int_equal(res.v[0].s.end_ns, 7);
	{
		/* DataRows folded into one record (code: their count), a row-limited Execute */
		struct pgwire_msg e = { .type = 'E', .len = 9, .data = (const uint8_t *)"\0\0\0\0\x64",
					.data_len = 5, .ts = 8 };
		struct pgwire_msg d = { .type = 'D', .len = 20, .code = 100, .ts = 9 };
		struct pgwire_msg su = { .type = 's', .len = 4, .ts = 10 };
		struct pgwire_msg sy = { .type = 'S', .len = 4, .ts = 8 };
		struct pgwire_msg z = { .type = 'Z', .len = 5, .data = (const uint8_t *)"T", .data_len = 1,
					.ts = 11 };

		pgwire_conn__msg(c, PGWIRE_CLIENT, &e);
		pgwire_conn__msg(c, PGWIRE_CLIENT, &sy);
		pgwire_conn__msg(c, PGWIRE_SERVER, &d);
		pgwire_conn__msg(c, PGWIRE_SERVER, &su);
		pgwire_conn__msg(c, PGWIRE_SERVER, &z);
	}
	assert_int_equal(res.n, 2);
	assert_int_equal(res.v[1].s.rows, 100);
	assert_true(res.v[1].s.suspended);
	assert_int_equal(res.v[1].s.kind, PGWIRE_PREPARED_UNKNOWN);	/* the unnamed portal: never bound */
	assert_int_equal(res.v[1].s.end_ns, 10);
	assert_int_equal(res.v[1].s.txn, 'T');
	pgwire_conn__free(c);
	results_free(&res);

	c = conn_new(&res, &k, false, 0, 0);
	pgwire_conn__feed(c, PGWIRE_CLIENT, S("\0\0\0"), 1);
	pgwire_conn__feed(c, PGWIRE_CLIENT, S("\x08\x04\xd2\x16\x2f"), 1);
	pgwire_conn__feed(c, PGWIRE_SERVER, S("N"), 2);
	pgwire_conn__feed(c, PGWIRE_CLIENT, S("\0\0\0\x11\0\x03\0\0user\0pg\0\0"), 3);
	bb_msg(&b, 'R', S("\0\0\0\0"));
	bb_msg(&b, 'K', S("\0\0\0\x07\0\0\0\x09"));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 4);
	bb_msg(&b, 'Q', S("SELECT 1\0"));
	feed(c, PGWIRE_CLIENT, &b, 5);
	bb_msg(&b, 'C', S("SELECT 1\0"));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 6);
	assert_false(pgwire_conn__encrypted(c));
	{
		uint32_t pid, key;

		pgwire_conn__backend_key(c, &pid, &key);
		assert_int_equal(pid, 7);
		assert_int_equal(key, 9);
	}
	assert_int_equal(res.n, 1);
	assert_int_equal(res.v[0].s.rows, 1);
	pgwire_conn__free(c);
	results_free(&res);
}

/* COPY FROM STDIN in the extended protocol: the Sync sent with the Execute is ignored. */
static void test_copy_extended(void **state)
{
	struct results res = {};
	struct sink k;
	struct pgwire_conn *c = conn_new(&res, &k, true, 0, 0);
	struct bb b = {};

	bb_msg(&b, 'P', S("\0COPY t FROM STDIN\0\0\0"));
	bb_msg(&b, 'B', S("\0\0\0\0\0\0\0\0"));
	bb_msg(&b, 'E', S("\0\0\0\0\0"));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 100);
	bb_msg(&b, '1', S(""));
	bb_msg(&b, '2', S(""));
	bb_msg(&b, 'G', S("\0\0\0"));
	feed(c, PGWIRE_SERVER, &b, 110);
	bb_msg(&b, 'd', S("1\n2\n3\n"));
	bb_msg(&b, 'c', S(""));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 120);
	bb_msg(&b, 'C', S("COPY 3\0"));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 130);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.v[0].s.kind, PGWIRE_COPY);
	assert_int_equal(res.v[0].s.status, PGWIRE_OK);
	assert_int_equal(res.v[0].s.rows, 3);
	assert_string_equal(res.v[0].s.tag, "COPY");
	/* the next statement still pairs */
	bb_msg(&b, 'Q', S("SELECT 1\0"));
	feed(c, PGWIRE_CLIENT, &b, 140);
	bb_msg(&b, 'E', S("SERROR\0VERROR\0C57014\0Mcanceling statement due to user request\0\0"));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 150);
	assert_int_equal(res.n, 2);
	assert_int_equal(res.v[1].s.status, PGWIRE_CANCELLED);
	assert_string_equal(res.v[1].s.severity, "ERROR");
	assert_string_equal(res.v[1].s.message, "canceling statement due to user request");
	pgwire_conn__free(c);
	results_free(&res);
}

/* FunctionCall, EmptyQueryResponse, tags, notices between statements, a close in flight. */
static void test_rarer_messages(void **state)
{
	struct results res = {};
	struct sink k;
	struct pgwire_conn *c = conn_new(&res, &k, true, 0, 0);
	struct bb b = {};

	bb_msg(&b, 'F', S("\0\0\x03\xe8\0\0\0\0\0\0"));
	feed(c, PGWIRE_CLIENT, &b, 1);
	bb_msg(&b, 'V', S("\xff\xff\xff\xff"));
	bb_msg(&b, 'Z', S("I"));
	bb_msg(&b, 'N', S("SNOTICE\0C00000\0Mhi\0\0"));
	bb_msg(&b, 'A', S("\0\0\0\x01" "ch\0payload\0"));
	bb_msg(&b, 'S', S("TimeZone\0UTC\0"));
	feed(c, PGWIRE_SERVER, &b, 2);
	bb_msg(&b, 'Q', S("\0"));
	bb_msg(&b, 'Q', S("INSERT INTO t VALUES (1); UPDATE t SET a = 2; CREATE TABLE u (a int)\0"));
	feed(c, PGWIRE_CLIENT, &b, 3);
	bb_msg(&b, 'I', S(""));
	bb_msg(&b, 'Z', S("I"));
	bb_msg(&b, 'C', S("INSERT 0 1\0"));
	bb_msg(&b, 'A', S("\0\0\0\x01" "ch\0payload\0"));
	bb_msg(&b, 'C', S("UPDATE 4\0"));
	bb_msg(&b, 'C', S("CREATE TABLE\0"));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 4);
	bb_msg(&b, 'Q', S("SELECT pg_sleep(10)\0"));
	feed(c, PGWIRE_CLIENT, &b, 5);
	pgwire_conn__close(c, 6);
	assert_int_equal(res.n, 4);
	assert_int_equal(res.v[0].s.kind, PGWIRE_FUNCTION);
	assert_string_equal(res.v[0].text, "<function call oid 1000>");
	assert_int_equal(res.v[1].s.parts, 1);
	assert_int_equal(res.v[1].s.rows, -1);
	assert_int_equal(res.v[2].s.parts, 3);
	assert_int_equal(res.v[2].s.rows, 5);
	assert_string_equal(res.v[2].s.tag, "CREATE TABLE");
	assert_int_equal(res.v[3].s.status, PGWIRE_CLOSED);
	assert_int_equal(res.v[3].s.end_ns, 6);
	pgwire_conn__free(c);
	results_free(&res);
}

/*
 * A pipeline with three Syncs outstanding: the error of the second batch skips the rest of that
 * batch only. Then asyncpg's way: Parse/Describe/Flush, an error, a Query sent before the Sync
 * (skipped by the server too), the Sync.
 */
static void test_pipeline_syncs(void **state)
{
	struct results res = {};
	struct sink k;
	struct pgwire_conn *c = conn_new(&res, &k, true, 0, 0);
	struct bb b = {};
	int i;

	bb_msg(&b, 'P', S("s1\0SELECT $1\0\0\0"));
	for (i = 0; i < 3; i++) {
		bb_msg(&b, 'B', S("\0s1\0\0\0\0\0\0\0"));
		bb_msg(&b, 'E', S("\0\0\0\0\0"));
		if (i == 1) {
			bb_msg(&b, 'B', S("\0s1\0\0\0\0\0\0\0"));
			bb_msg(&b, 'E', S("\0\0\0\0\0"));
		}
		bb_msg(&b, 'S', S(""));
	}
	feed(c, PGWIRE_CLIENT, &b, 10);
	bb_msg(&b, '1', S(""));
	bb_msg(&b, '2', S(""));
	bb_msg(&b, 'C', S("SELECT 1\0"));
	bb_msg(&b, 'Z', S("I"));
	bb_msg(&b, '2', S(""));
	bb_msg(&b, 'E', S("SERROR\0VERROR\0C22012\0Mdivision by zero\0\0"));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 20);
	bb_msg(&b, '2', S(""));
	bb_msg(&b, 'D', S("\0\x01\0\0\0\x01" "1"));
	bb_msg(&b, 'D', S("\0\x01\0\0\0\x01" "2"));
	bb_msg(&b, 'C', S("SELECT 2\0"));
	bb_msg(&b, 'Z', S("T"));
	feed(c, PGWIRE_SERVER, &b, 30);
	assert_int_equal(res.n, 4);
	assert_int_equal(res.v[0].s.status, PGWIRE_OK);
	assert_int_equal(res.v[0].s.end_ns, 20);
	assert_int_equal(res.v[1].s.status, PGWIRE_ERROR);
	assert_string_equal(res.v[1].s.sqlstate, "22012");
	assert_string_equal(res.v[1].s.message, "division by zero");
	assert_int_equal(res.v[2].s.status, PGWIRE_SKIPPED);
	assert_int_equal(res.v[3].s.status, PGWIRE_OK);
	assert_int_equal(res.v[3].s.rows, 2);
	assert_int_equal(res.v[3].s.txn, 'T');
	assert_string_equal(res.v[3].name, "s1");
	assert_string_equal(res.v[3].text, "SELECT $1");

	bb_msg(&b, 'P', S("s2\0SELEC 1\0\0\0"));
	bb_msg(&b, 'D', S("Ss2\0"));
	bb_msg(&b, 'H', S(""));
	feed(c, PGWIRE_CLIENT, &b, 40);
	bb_msg(&b, 'E', S("SERROR\0VERROR\0C42601\0Msyntax error\0\0"));
	feed(c, PGWIRE_SERVER, &b, 50);
	bb_msg(&b, 'Q', S("SELECT 'skipped'\0"));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 60);
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 70);
	assert_int_equal(res.n, 6);
	assert_int_equal(res.v[4].s.status, PGWIRE_ERROR);
	assert_string_equal(res.v[4].text, "SELEC 1");
	assert_int_equal(res.v[4].s.end_ns, 50);
	assert_int_equal(res.v[5].s.status, PGWIRE_SKIPPED);
	/* and pairing goes on */
	bb_msg(&b, 'Q', S("SELECT 3\0"));
	feed(c, PGWIRE_CLIENT, &b, 80);
	bb_msg(&b, 'C', S("SELECT 1\0"));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 90);
	assert_int_equal(res.n, 7);
	assert_int_equal(res.v[6].s.status, PGWIRE_OK);
	assert_int_equal(res.v[6].s.end_ns - res.v[6].s.start_ns, 10);
	pgwire_conn__free(c);
	results_free(&res);
}

/* max_names: pg8000 names every statement and portal; with 2 names most Executes are unknown. */
static void test_name_cap(void **state)
{
	struct pgwire_conn_opts o = { .max_names = 2 };
	struct cap c;
	struct replay rp;
	size_t i, unknown = 0;

	cap_load("pg8000", &c);
	replay_opts(&c, 0, 0, &o, &rp);
	assert_int_equal(rp.res.n, 4);
	for (i = 0; i < rp.res.n; i++)
		unknown += rp.res.v[i].s.kind == PGWIRE_PREPARED_UNKNOWN;
	assert_true(rp.st.dropped_names > 0);
	assert_true(unknown > 0);
	assert_int_equal(rp.st.unknown_prepared, unknown);
	results_free(&rp.res);
	cap_free(&c);
}

/*
 * 1,100 named statements against the default cap of 1,024 (the table grows on the way), every
 * other one closed again, then each one executed: known, closed (unknown) or over the cap.
 */
static void test_names_many(void **state)
{
	struct results res = {};
	struct sink k;
	struct pgwire_conn *c = conn_new(&res, &k, true, 0, 0);
	struct pgwire_stats st;
	struct bb b = {};
	uint8_t p[64];
	size_t known = 0, unknown = 0;
	int i, n;

	for (i = 0; i < 1100; i++) {
		n = snprintf((char *)p, sizeof(p), "st%d%cSELECT %d%c%c%c", i, 0, i, 0, 0, 0);
		bb_msg(&b, 'P', p, (size_t)n);
		feed(c, PGWIRE_CLIENT, &b, 1);
	}
	for (i = 0; i < 1100; i += 2) {
		n = snprintf((char *)p, sizeof(p), "Sst%d%c", i, 0);
		bb_msg(&b, 'C', p, (size_t)n);
		feed(c, PGWIRE_CLIENT, &b, 2);
	}
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 2);
	for (i = 0; i < 1100; i++)
		bb_msg(&b, '1', S(""));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 3);
	for (i = 0; i < 1100; i++) {
		char want[32];

		n = snprintf((char *)p, sizeof(p), "%cst%d%c%c%c%c%c%c%c", 0, i, 0, 0, 0, 0, 0, 0, 0);
		bb_msg(&b, 'B', p, (size_t)n);
		bb_msg(&b, 'E', S("\0\0\0\0\0"));
		bb_msg(&b, 'S', S(""));
		feed(c, PGWIRE_CLIENT, &b, 4);
		bb_msg(&b, '2', S(""));
		bb_msg(&b, 'C', S("SELECT 1\0"));
		bb_msg(&b, 'Z', S("I"));
		feed(c, PGWIRE_SERVER, &b, 5);
		assert_int_equal(res.n, (size_t)i + 1);
		snprintf(want, sizeof(want), "st%d", i);
		assert_string_equal(res.v[i].name, want);
		if (res.v[i].s.kind == PGWIRE_EXTENDED) {
			snprintf(want, sizeof(want), "SELECT %d", i);
			assert_string_equal(res.v[i].text, want);
			assert_true(i % 2 == 1 && i < 1024);
			known++;
		} else {
			assert_true(i % 2 == 0 || i >= 1024);
			unknown++;
		}
	}
	pgwire_conn__stats(c, &st);
	assert_int_equal(st.dropped_names, 1100 - 1024);
	assert_int_equal(known, 512);
	assert_int_equal(unknown, 588);
	assert_int_equal(st.unknown_prepared, 588);
	pgwire_conn__free(c);
	results_free(&res);
}

/*
 * Named portals never closed, as the loader sees pg8000 1.10's (the BPF side keeps their Close
 * round trips): forgotten when their Execute runs to its end, so a table of four names serves 50
 * statements; a suspended portal stays for its next Execute; a portal bound again before the
 * first binding's Execute was answered stays for the second binding's Execute.
 */
static void test_portals_forgotten(void **state)
{
	struct results res = {};
	struct sink k;
	struct pgwire_conn *c = conn_new(&res, &k, true, 4, 0);
	struct pgwire_stats st;
	struct bb b = {};
	uint8_t p[64];
	int i, n;

	bb_msg(&b, 'P', S("s\0SELECT $1\0\0\0"));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 1);
	bb_msg(&b, '1', S(""));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 2);
	for (i = 0; i < 50; i++) {
		n = snprintf((char *)p, sizeof(p), "pg8000_portal_%d%cs%c%c%c%c%c%c%c", i, 0, 0, 0, 0, 0, 0, 0, 0);
		bb_msg(&b, 'B', p, (size_t)n);
		n = snprintf((char *)p, sizeof(p), "pg8000_portal_%d%c%c%c%c%c", i, 0, 0, 0, 0, 0);
		bb_msg(&b, 'E', p, (size_t)n);
		bb_msg(&b, 'S', S(""));
		feed(c, PGWIRE_CLIENT, &b, 3);
		bb_msg(&b, '2', S(""));
		bb_msg(&b, 'D', S("\0\1\0\0\0\1" "1"));
		bb_msg(&b, 'C', S("SELECT 1\0"));
		bb_msg(&b, 'Z', S("I"));
		feed(c, PGWIRE_SERVER, &b, 4);
		assert_int_equal(res.n, (size_t)i + 1);
		assert_int_equal(res.v[i].s.kind, PGWIRE_EXTENDED);
		assert_string_equal(res.v[i].text, "SELECT $1");
	}
	/* suspended (a row limit of 1), then fetched to its end */
	bb_msg(&b, 'B', S("cur\0s\0\0\0\0\0\0\0"));
	bb_msg(&b, 'E', S("cur\0\0\0\0\1"));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 5);
	bb_msg(&b, '2', S(""));
	bb_msg(&b, 'D', S("\0\1\0\0\0\1" "1"));
	bb_msg(&b, 's', S(""));
	bb_msg(&b, 'Z', S("T"));
	feed(c, PGWIRE_SERVER, &b, 6);
	bb_msg(&b, 'E', S("cur\0\0\0\0\0"));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 7);
	bb_msg(&b, 'C', S("SELECT 0\0"));
	bb_msg(&b, 'Z', S("T"));
	feed(c, PGWIRE_SERVER, &b, 8);
	assert_int_equal(res.n, 52);
	assert_true(res.v[50].s.suspended);
	assert_int_equal(res.v[51].s.kind, PGWIRE_EXTENDED);
	assert_string_equal(res.v[51].text, "SELECT $1");
	/* "r" executed, closed and bound again in one batch; its second Execute after the answer */
	bb_msg(&b, 'B', S("r\0s\0\0\0\0\0\0\0"));
	bb_msg(&b, 'E', S("r\0\0\0\0\0"));
	bb_msg(&b, 'C', S("Pr\0"));
	bb_msg(&b, 'B', S("r\0s\0\0\0\0\0\0\0"));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 9);
	bb_msg(&b, '2', S(""));
	bb_msg(&b, 'C', S("SELECT 0\0"));
	bb_msg(&b, '3', S(""));
	bb_msg(&b, '2', S(""));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 10);
	bb_msg(&b, 'E', S("r\0\0\0\0\0"));
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 11);
	bb_msg(&b, 'C', S("SELECT 0\0"));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 12);
	assert_int_equal(res.n, 54);
	assert_int_equal(res.v[53].s.kind, PGWIRE_EXTENDED);
	assert_string_equal(res.v[53].text, "SELECT $1");
	pgwire_conn__stats(c, &st);
	assert_int_equal(st.dropped_names, 0);
	assert_int_equal(st.unknown_prepared, 0);
	pgwire_conn__free(c);
	results_free(&res);
}

/* A pipeline deeper than max_inflight: counted, handled as a loss, pairing starts again. */
static void test_inflight_cap(void **state)
{
	struct results res = {};
	struct sink k;
	struct pgwire_conn *c = conn_new(&res, &k, true, 0, 8);
	struct pgwire_stats st;
	struct bb b = {};
	int i;

	bb_msg(&b, 'P', S("\0SELECT 1\0\0\0"));
	for (i = 0; i < 12; i++) {
		bb_msg(&b, 'B', S("\0\0\0\0\0\0\0\0"));
		bb_msg(&b, 'E', S("\0\0\0\0\0"));
	}
	bb_msg(&b, 'S', S(""));
	feed(c, PGWIRE_CLIENT, &b, 1);
	bb_msg(&b, '1', S(""));
	for (i = 0; i < 12; i++) {
		bb_msg(&b, '2', S(""));
		bb_msg(&b, 'D', S("\0\x01\0\0\0\x01" "1"));
		bb_msg(&b, 'C', S("SELECT 1\0"));
	}
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 2);
	pgwire_conn__stats(c, &st);
	assert_int_equal(st.dropped_stmts, 1);
	assert_int_equal(st.lost, 1);
	assert_int_equal(res.n, 7);	/* queued before the cap: P + 7 E */
	for (i = 0; i < 7; i++)
		assert_int_equal(res.v[i].s.status, PGWIRE_LOST);
	bb_msg(&b, 'Q', S("SELECT 2\0"));
	feed(c, PGWIRE_CLIENT, &b, 3);
	bb_msg(&b, 'C', S("SELECT 1\0"));
	bb_msg(&b, 'Z', S("I"));
	feed(c, PGWIRE_SERVER, &b, 4);
	assert_int_equal(res.n, 8);
	assert_int_equal(res.v[7].s.status, PGWIRE_OK);
	pgwire_conn__free(c);
	results_free(&res);
}

/* The framer alone: records, cuts and the capture rule. */
struct frec {
	int n, lost;
	uint8_t types[16];
	uint32_t lens[16], dlen[16];
	bool cut[16];
};

static void on_frec(void *ctx, enum pgwire_dir dir, const struct pgwire_msg *m)
{
	struct frec *f = ctx;

	if (m->rec == PGWIRE_REC_LOST)
		f->lost++;
	if (m->rec != PGWIRE_REC_MSG || f->n == 16)
		return;
	f->types[f->n] = m->type;
	f->lens[f->n] = m->len;
	f->dlen[f->n] = m->data_len;
	f->cut[f->n++] = m->cut;
}

static void test_framer(void **state)
{
	struct pgwire_framer f;
	uint8_t buf[8];
	struct frec r = {};
	struct bb b = {};
	size_t i;

	pgwire_framer__init(&f, PGWIRE_SERVER, PGWIRE_PH_TYPED, buf, sizeof(buf));
	bb_msg(&b, 'D', S("\0\x01\0\0\0\x05hello"));
	bb_msg(&b, 'C', S("SELECT 1\0"));
	bb_msg(&b, 'Z', S("I"));
	for (i = 0; i < b.n; i++)
		pgwire_framer__feed(&f, b.b + i, 1, i, on_frec, &r);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.dlen[0], 0);		/* DataRow: never captured */
	assert_true(r.cut[0]);
	assert_int_equal(r.dlen[1], 8);		/* cap */
	assert_true(r.cut[1]);
	assert_int_equal(r.lens[2], 5);
	assert_false(r.cut[2]);
	/* invalid headers: unknown type, short length, wrong fixed length, absurd length */
	assert_false(pgwire__header_ok(PGWIRE_SERVER, 'Q', 8));
	assert_false(pgwire__header_ok(PGWIRE_CLIENT, 'Q', 3));
	assert_false(pgwire__header_ok(PGWIRE_CLIENT, 'S', 5));
	assert_false(pgwire__header_ok(PGWIRE_SERVER, 'Z', 6));
	assert_false(pgwire__header_ok(PGWIRE_SERVER, 'S', PGWIRE_SMALL_MAX + 1));
	assert_true(pgwire__header_ok(PGWIRE_CLIENT, 'Q', PGWIRE_SMALL_MAX + 1));
	assert_false(pgwire__header_ok(PGWIRE_CLIENT, 'Q', PGWIRE_BIG_MAX));
	pgwire_framer__feed(&f, S("Z\0\0\0\x06I"), 50, on_frec, &r);
	assert_int_equal(r.lost, 1);
	assert_int_equal(f.phase, PGWIRE_PH_LOST);
}

/* Every seed of tests/fuzz/corpus/pgwire and every fuzzer find kept in tests/data/pgwire/fuzz. */
static void run_dir(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[1024];
		uint8_t *buf;
		FILE *f;
		long size;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "rb");
		assert_non_null(f);
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		fseek(f, 0, SEEK_SET);
		buf = malloc((size_t)size + 1);
		assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, (size_t)size);
		free(buf);
		(*n)++;
	}
	closedir(d);
}

static void test_fuzz_inputs(void **state)
{
	size_t n = 0;

	run_dir(TEST_DATA_DIR "/../fuzz/corpus/pgwire", &n);
	run_dir(DATA "fuzz", &n);
	print_message("fuzz inputs replayed: %zu\n", n);
	assert_true(n >= 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framer),
		cmocka_unit_test(test_captures_as_recorded),
		cmocka_unit_test(test_captures_rechunked),
		cmocka_unit_test(test_big),
		cmocka_unit_test(test_classifier_on_captures),
		cmocka_unit_test(test_false_positives),
		cmocka_unit_test(test_midstream_unknown_prepared),
		cmocka_unit_test(test_learned_text),
		cmocka_unit_test(test_bind_and_params),
		cmocka_unit_test(test_lost_and_resync),
		cmocka_unit_test(test_parse_during_desync),
		cmocka_unit_test(test_startup_requests),
		cmocka_unit_test(test_copy_extended),
		cmocka_unit_test(test_rarer_messages),
		cmocka_unit_test(test_pipeline_syncs),
		cmocka_unit_test(test_name_cap),
		cmocka_unit_test(test_names_many),
		cmocka_unit_test(test_portals_forgotten),
		cmocka_unit_test(test_inflight_cap),
		cmocka_unit_test(test_fuzz_inputs),
	};

	return cmocka_run_group_tests_name("pgwire", tests, NULL, NULL);
}
