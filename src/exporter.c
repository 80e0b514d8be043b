// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* HTTP endpoint over libmicrohttpd: routes, argument checks, basic auth, TLS. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "exporter.h"
#include "membuf.h"
#include "promtext.h"

#define REALM "pytrace-bpf"

struct exporter {
	struct exporter_opts o;
	struct MHD_Daemon *d;
	uint16_t port;
	char *user, *password;
	char *tls_cert, *tls_key;
	struct exporter_stats st;	/* updated with __atomic builtins */
};

enum route_kind { R_METRICS, R_HEALTHZ, R_FLAME, R_PPROF, R_REPORT };

static const struct route {
	const char *path;
	enum route_kind kind;
	bool seconds;
	const char *content_type;
} routes[] = {
	{ "/metrics", R_METRICS, false, NULL },
	{ "/healthz", R_HEALTHZ, false, "text/plain; charset=utf-8" },
	{ "/flame.svg", R_FLAME, true, "image/svg+xml" },
	{ "/debug/pprof/profile", R_PPROF, true, "application/octet-stream" },
	{ "/report.json", R_REPORT, false, "application/json" },
};

static void count(uint64_t *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

int exporter__parse_seconds(const char *s, unsigned max, int *out, char *reason, size_t len)
{
	unsigned long long v = 0;
	const char *p = s;

	if (!s || !*s) {
		snprintf(reason, len, "seconds missing: add ?seconds=N (1 to %u)", max);
		return -EINVAL;
	}
	if (*p == '-' && p[1]) {
		snprintf(reason, len, "seconds must be positive, got %.20s", s);
		return -EINVAL;
	}
	if (*p == '+')
		p++;
	if (!*p)
		goto nan;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			goto nan;
		if (v <= max)
			v = v * 10 + (unsigned)(*p - '0');
	}
	if (v == 0) {
		snprintf(reason, len, "seconds must be positive, got %.20s", s);
		return -EINVAL;
	}
	if (v > max) {
		snprintf(reason, len, "seconds above the cap of %u", max);
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
nan:
	snprintf(reason, len, "seconds is not a whole number: %.20s", s);
	return -EINVAL;
}

/* The reply with an owned buffer (freed by libmicrohttpd). */
static enum MHD_Result queue(struct exporter *e, struct MHD_Connection *c, unsigned status, char *data, size_t len,
			     const char *type, const char *disposition)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (disposition)
		MHD_add_response_header(r, "Content-Disposition", disposition);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (status == MHD_HTTP_UNAUTHORIZED)
		ret = MHD_queue_basic_auth_fail_response(c, REALM, r);
	else
		ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	if (status >= 500)
		count(&e->st.errors);
	else if (status == 401)
		count(&e->st.auth_failures);
	else if (status >= 400)
		count(&e->st.bad_requests);
	return ret;
}

static enum MHD_Result queue_error(struct exporter *e, struct MHD_Connection *c, unsigned status, const char *fmt,
				   ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result queue_error(struct exporter *e, struct MHD_Connection *c, unsigned status, const char *fmt,
				   ...)
{
	char line[256], *data;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* one line: no newline inside the reason */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	data = malloc(n);
	if (!data)
		return MHD_NO;
	memcpy(data, line, n);
	return queue(e, c, status, data, n, "text/plain; charset=utf-8", NULL);
}

static bool equal_const_time(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static bool authorized(struct exporter *e, struct MHD_Connection *c)
{
	char *user, *pass = NULL;
	bool ok;

	if (!e->user)
		return true;
	user = MHD_basic_auth_get_username_password(c, &pass);
	ok = user && pass && equal_const_time(user, e->user) & equal_const_time(pass, e->password);
	if (user)
		MHD_free(user);
	if (pass)
		MHD_free(pass);
	return ok;
}

static enum MHD_Result serve_metrics(struct exporter *e, struct MHD_Connection *c)
{
	const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	enum prom_format fmt = prom__negotiate(accept);
	struct membuf b;
	char *data;
	size_t len;
	int err;

	if (!e->o.registry)
		return queue_error(e, c, MHD_HTTP_NOT_FOUND, "no metrics registry");
	if (e->o.before_scrape)
		e->o.before_scrape(e->o.ctx);
	membuf__init(&b, 0);
	err = prom_registry__write(e->o.registry, fmt, &b);
	if (err) {
		membuf__free(&b);
		return queue_error(e, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics: %s", strerror(-err));
	}
	count(fmt == PROM_FMT_OPENMETRICS ? &e->st.scrapes_openmetrics : &e->st.scrapes_text);
	data = membuf__steal(&b, &len);
	return queue(e, c, MHD_HTTP_OK, data, len, prom__content_type(fmt), NULL);
}

static enum MHD_Result serve_callback(struct exporter *e, struct MHD_Connection *c, const struct route *rt,
				      const char *url, const char *method)
{
	exporter_route_fn fn = rt->kind == R_HEALTHZ ? e->o.healthz : rt->kind == R_FLAME ? e->o.flame :
			       rt->kind == R_PPROF ? e->o.pprof : e->o.report;
	struct exporter_request req = { .path = url, .method = method };
	struct exporter_reply rep = { .content_type = rt->content_type };
	char *data = NULL;
	size_t len = 0;
	int status;

	if (!fn && rt->kind != R_HEALTHZ)
		return queue_error(e, c, MHD_HTTP_NOT_FOUND, "%s is not enabled in this collector", rt->path);
	if (rt->seconds) {
		const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "seconds");

		if (exporter__parse_seconds(s, e->o.max_seconds, &req.seconds, rep.reason, sizeof(rep.reason)))
			return queue_error(e, c, MHD_HTTP_BAD_REQUEST, "%s", rep.reason);
	}
	req.service = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "service");
	rep.body = open_memstream(&data, &len);
	if (!rep.body)
		return queue_error(e, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	if (fn) {
		status = fn(e->o.ctx, &req, &rep);
	} else {
		fputs("ok\n", rep.body);
		status = MHD_HTTP_OK;
	}
	if (fclose(rep.body)) {
		free(data);
		return queue_error(e, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	if (status < 200 || status > 599)
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	if (status >= 400) {
		free(data);
		return queue_error(e, c, status, "%s", rep.reason[0] ? rep.reason : "request failed");
	}
	return queue(e, c, status, data, len, rep.content_type ? rep.content_type : "application/octet-stream",
		     rt->kind == R_PPROF ? "attachment; filename=\"profile\"" : NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct exporter *e = cls;

	count(&e->st.requests);
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return queue_error(e, c, MHD_HTTP_METHOD_NOT_ALLOWED, "%.16s not allowed: this endpoint is read-only (GET, HEAD)",
				   method);
	/* /healthz tells only that it runs: open to probes (kubelet, load balancers) that carry no credentials */
	if (strcmp(url, "/healthz") && !authorized(e, c))
		return queue_error(e, c, MHD_HTTP_UNAUTHORIZED, "authentication required");
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(url, routes[i].path))
			continue;
		if (routes[i].kind == R_METRICS)
			return serve_metrics(e, c);
		return serve_callback(e, c, &routes[i], url, method);
	}
	return queue_error(e, c, MHD_HTTP_NOT_FOUND, "unknown path %.100s: try /metrics, /healthz, /flame.svg?seconds=N, "
			   "/debug/pprof/profile?seconds=N, /report.json", url);
}

static char *read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	struct membuf b;
	char chunk[4096];
	size_t n;

	if (!f) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	membuf__init(&b, 1 << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		membuf__append(&b, chunk, n);
	fclose(f);
	if (membuf__error(&b) || !b.len) {
		snprintf(err, errlen, "cannot read %s: %s", path, b.len ? "too large" : "empty");
		membuf__free(&b);
		return NULL;
	}
	return membuf__steal(&b, NULL);
}

static void free_exporter(struct exporter *e)
{
	free(e->user);
	free(e->password);
	free(e->tls_cert);
	free(e->tls_key);
	free(e);
}

int exporter__start(const struct exporter_opts *o, struct exporter **out, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
	struct MHD_OptionItem opts[12];
	const union MHD_DaemonInfo *info;
	struct exporter *e;
	size_t n = 0;

	*out = NULL;
	if (!o) {
		snprintf(err, errlen, "no options");
		return -EINVAL;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	e->o = *o;
	if (!e->o.address || !*e->o.address)
		e->o.address = EXPORTER_DEFAULT_ADDRESS;
	if (!e->o.max_connections)
		e->o.max_connections = EXPORTER_DEFAULT_MAX_CONNS;
	if (!e->o.threads)
		e->o.threads = EXPORTER_DEFAULT_THREADS;
	if (!e->o.max_seconds)
		e->o.max_seconds = EXPORTER_DEFAULT_MAX_SECONDS;
	if (e->o.max_seconds > 1000000)
		e->o.max_seconds = 1000000;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, e->o.address, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(e->o.port);
	} else if (inet_pton(AF_INET6, e->o.address, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(e->o.port);
		flags |= MHD_USE_IPv6;
	} else {
		snprintf(err, errlen, "listen address %.64s is not a numeric IPv4 or IPv6 address", e->o.address);
		free_exporter(e);
		return -EINVAL;
	}
	if (!o->basic_auth_user != !o->basic_auth_password) {
		snprintf(err, errlen, "basic auth needs both a user and a password");
		free_exporter(e);
		return -EINVAL;
	}
	if (o->basic_auth_user) {
		e->user = strdup(o->basic_auth_user);
		e->password = strdup(o->basic_auth_password);
		if (!e->user || !e->password) {
			snprintf(err, errlen, "out of memory");
			free_exporter(e);
			return -ENOMEM;
		}
	}
	if (!o->tls_cert_file != !o->tls_key_file) {
		snprintf(err, errlen, "TLS needs both a certificate and a key file");
		free_exporter(e);
		return -EINVAL;
	}
	if (o->tls_cert_file) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(err, errlen, "TLS requested but this libmicrohttpd was built without TLS support");
			free_exporter(e);
			return -ENOTSUP;
		}
		if (!(e->tls_cert = read_file(o->tls_cert_file, err, errlen)) ||
		    !(e->tls_key = read_file(o->tls_key_file, err, errlen))) {
			free_exporter(e);
			return -EINVAL;
		}
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, e->tls_cert };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, e->tls_key };
	}
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, &ss };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, e->o.max_connections, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, EXPORTER_TIMEOUT_S, NULL };
	if (e->o.threads > 1)
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, e->o.threads, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };

	e->d = MHD_start_daemon(flags, e->o.port, NULL, NULL, on_request, e, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!e->d) {
		int saved = errno ? errno : EADDRINUSE;

		snprintf(err, errlen, "cannot listen on %s port %u%s: %s", e->o.address, e->o.port,
			 o->tls_cert_file ? " with TLS (check the certificate and key)" : "", strerror(saved));
		free_exporter(e);
		return -saved;
	}
	info = MHD_get_daemon_info(e->d, MHD_DAEMON_INFO_BIND_PORT);
	e->port = info ? info->port : e->o.port;
	*out = e;
	return 0;
}

uint16_t exporter__port(const struct exporter *e)
{
	return e->port;
}

void exporter__stats(const struct exporter *e, struct exporter_stats *st)
{
	st->requests = __atomic_load_n(&e->st.requests, __ATOMIC_RELAXED);
	st->scrapes_text = __atomic_load_n(&e->st.scrapes_text, __ATOMIC_RELAXED);
	st->scrapes_openmetrics = __atomic_load_n(&e->st.scrapes_openmetrics, __ATOMIC_RELAXED);
	st->bad_requests = __atomic_load_n(&e->st.bad_requests, __ATOMIC_RELAXED);
	st->auth_failures = __atomic_load_n(&e->st.auth_failures, __ATOMIC_RELAXED);
	st->errors = __atomic_load_n(&e->st.errors, __ATOMIC_RELAXED);
}

void exporter__stop(struct exporter *e)
{
	if (!e)
		return;
	if (e->d)
		MHD_stop_daemon(e->d);
	free_exporter(e);
}
