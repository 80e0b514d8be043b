/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * aiohttp's resources as route names ("/items/{id}/"): each resource's canonical path, as
 * request.match_info.route.resource.canonical gives it (what OpenTelemetry's aiohttp
 * instrumentation reports as http.route).
 *
 * aiohttp's match (request._match_info) is per request. Its app's router is not, and the app is
 * in reach: the task serving a request runs web_protocol's RequestHandler._handle_request(self,
 * request, start_time, request_handler), whose request_handler is the app's _handle, one bound
 * method made when the server was set up (web_runner's Server(app._handle)). The walker gives that
 * local with each response start (routes.h, struct pt_proc's route_code); the tool reads the
 * router once from it into a djroutes table (first match, in the router's order, as
 * UrlDispatcher.resolve tries them):
 *   - PlainResource: `_path`;
 *   - DynamicResource: `_formatter` ("/items/{id}/", the name) and `_pattern`, a compiled re.Pattern
 *     whose source is read from the object (PatternObject.pattern, _sre's struct: its fifth
 *     field, the same on 3.8-3.15; the object's type is checked first);
 *   - StaticResource: `_prefix`, everything below it;
 *   - PrefixedSubAppResource: the sub-app's resources (aiohttp puts the prefix in their paths
 *     when it adds the sub-app), then everything else below the prefix named by none (aiohttp
 *     answers 404 there, without trying the next resources);
 *   - anything else (a domain-matched sub-app, a resource class of the app's own): paths it may
 *     take are named by none.
 * Each resource keeps its routes' methods (`_routes`, each ResourceRoute's `_method`, "*" for
 * any; StaticResource's a dict by method): a resource whose routes do not allow the request's
 * method is passed over for the next one, as aiohttp does, and a path that none allows the
 * method of (aiohttp's 405) is named by none (djroutes__set_strict_methods). A resource without
 * a route matches nothing. aiohttp 3.8 (Debian 12): aiohttp/web_urldispatcher.py.
 */
#ifndef PYTRACE_AIOROUTES_H
#define PYTRACE_AIOROUTES_H

#include <stdint.h>
#include "djroutes.h"

/*
 * Read the resources of the aiohttp app whose request handler (app._handle, bound) is at handler
 * into t: 0, -EINVAL (not such a handler: an error handler, made per bad request), or -errno.
 * *skipped counts resources not read.
 */
int aioroutes__read(const struct py_layout *l, const struct mem_reader *mr, uint64_t handler,
		    struct djroutes *t, unsigned *skipped);

#endif
