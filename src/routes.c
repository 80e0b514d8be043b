// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include "httpparse.h"
#include "pythreads.h"
#include "routes.h"
#include "symbolize.h"

/* Starlette 0.13-0.47 (Debian 12: 0.26.1; FastAPI's APIRoute inherits it): starlette/routing.py */
const struct route_frame routes__frames[] = {
	{ "starlette.routing", "Route", "handle", "Route.handle", "/starlette/routing.py", "self", "path" },
	/* aiohttp 3.x: web_protocol.py, the task of each request (aioroutes.h) */
	{ "aiohttp.web_protocol", "RequestHandler", "_handle_request", "RequestHandler._handle_request",
	  "/aiohttp/web_protocol.py", "request_handler", NULL, ROUTE_APP_HANDLER },
	/* Tornado 5-6: web.py, the task of each request (tornroutes.h) */
	{ "tornado.web", "RequestHandler", "_execute", "RequestHandler._execute", "/tornado/web.py", "self", NULL,
	  ROUTE_APP_TORNADO, "application" },
	/*
	 * gunicorn 19-23: each worker class's handle_request(self, ...) calls self.wsgi, the app, and
	 * writes its response (gevent's and eventlet's workers through AsyncWorker's)
	 */
	{ "gunicorn.workers.sync", "SyncWorker", "handle_request", "SyncWorker.handle_request",
	  "/gunicorn/workers/sync.py", "self", NULL, ROUTE_APP_WSGI_WORKER },
	{ "gunicorn.workers.gthread", "ThreadWorker", "handle_request", "ThreadWorker.handle_request",
	  "/gunicorn/workers/gthread.py", "self", NULL, ROUTE_APP_WSGI_WORKER },
	{ "gunicorn.workers.base_async", "AsyncWorker", "handle_request", "AsyncWorker.handle_request",
	  "/gunicorn/workers/base_async.py", "self", NULL, ROUTE_APP_WSGI_WORKER },
};
const unsigned routes__nframes = sizeof(routes__frames) / sizeof(routes__frames[0]);

const struct route_frame *routes__frame(const char *name, const char *file)
{
	for (unsigned i = 0; i < routes__nframes; i++)
		if (py_frame_is(name, file, routes__frames[i].qualname, routes__frames[i].method, routes__frames[i].file))
			return &routes__frames[i];
	return NULL;
}

int routes__read(const struct py_layout *l, const struct mem_reader *mr, const struct route_frame *rf,
		 uint64_t obj, char *out, size_t size, bool *multi)
{
	char raw[HTTP_ROUTE_MAX * 2];
	uint64_t s;
	int ret;

	*multi = false;
	if (!obj)
		return -EINVAL;
	ret = pythreads__attr(l, mr, obj, rf->attr, &s);
	if (ret)
		return ret;
	ret = py_read_str(l, mr, s, raw, sizeof(raw));
	if (ret < 0)
		return ret;
	return http_route_template(raw, out, size, multi);
}
