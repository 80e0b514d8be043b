/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Flask's URL rules as route names ("/books/<int:book_id>/"), as request.url_rule.rule gives
 * them (what OpenTelemetry's Flask instrumentation reports as http.route).
 *
 * Like Django's match (djroutes.h), Flask's is a per-request object, gone when the WSGI server
 * writes the response; the app's rules are not. The tool finds the app object in the process's
 * memory and reads its rules once, into a djroutes table:
 *   - the app: a module-level instance of flask.app.Flask or of a subclass (the `app =
 *     Flask(__name__)` of every Flask app, or an app factory's result kept in a module, as
 *     gunicorn's `module:app` needs), looked for in the modules of the process that are not in a
 *     site-packages, dist-packages or the standard library's directory (their `__file__`:
 *     djroutes__find_apps); exactly one such app, or none is used
 *     (DispatcherMiddleware's several apps each serve a prefix the rules do not say); where
 *     there is none (an app factory's result: `gunicorn 'module:create_app()'`), the app that the
 *     process's gunicorn worker serves, its `wsgi`, given by the walker from the worker's
 *     handle_request frame (routes.h, ROUTE_APP_WSGI_WORKER), if it is a Flask app;
 *   - its rules: app.url_map (werkzeug's Map) ._rules_by_endpoint, each Rule's `rule` and
 *     `_converters` (each parameter's converter object, whose `regex` gives its syntax); rules
 *     with build_only are left out, and a Map with host_matching names nothing.
 * werkzeug (2.2+) matches with a state machine that prefers static parts over converters, not
 * the declared order: a path is named only when every rule matching it has the same rule text
 * (djroutes__set_unique); else, or if a rule cannot be translated and may match it, it keeps its
 * folded path. Werkzeug 2.2 (Debian 12) and Flask 2.2 were read here; the names are werkzeug's
 * (werkzeug/routing/map.py, rules.py, converters.py).
 */
#ifndef PYTRACE_FLASKROUTES_H
#define PYTRACE_FLASKROUTES_H

#include <stdint.h>
#include "djroutes.h"

/*
 * Read the rules of the Flask app of the process that mr reads into t (set unique): 0, -ENOENT
 * (Flask is not imported), -ENODATA (no app object found: not a module global), -ENOTSUP (several apps, host
 * matching), or -errno of a read. *skipped counts rules not read.
 */
int flaskroutes__read(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
		      struct djroutes *t, unsigned *skipped);
/*
 * The same from the app a gunicorn worker serves: worker's `wsgi` (the `self` of its
 * handle_request: routes.h, ROUTE_APP_WSGI_WORKER), which is an app factory's result. 0, -EINVAL
 * (not a worker, or its app not a Flask app: a middleware around it), -ENOTSUP or -errno.
 */
int flaskroutes__read_worker(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			     uint64_t worker, struct djroutes *t, unsigned *skipped);

#endif
