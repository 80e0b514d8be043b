/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Tornado's URL specs as route names ("/items/(\d+)/", "/users/<uid>/"): the regex of the rule
 * that routes a request, as Tornado's own routing tries them (tornado/routing.py, web.py; 6.2 in
 * Debian 12). Tornado has no template syntax: the regex is the route, as its reverse_url takes
 * it; a named group is named as Django's re_path's are ("<uid>").
 *
 * The app is rarely a module global (made in main(), held by the HTTPServer). It is in reach
 * from the task that serves a request: RequestHandler._execute(self, ...) runs the handler's
 * method and finish(), which writes the response, and self.application is the app. The walker
 * gives that local (a cell: a closure of _execute's takes self) with each response start
 * (routes.h). The handler dies with its request, often before the tool reads it, its memory
 * soon another object's (a connection closed after its response: nginx's default to its
 * upstreams), so the walker reads its `application` itself: it gives the handler's class (a
 * static object) until the tool has worked out from it where the class keeps it (struct
 * pt_proc's route_attr: the first response or two are not named), then the app. The app's rules
 * are read once (checked to be a tornado.web.Application's), into a djroutes table (first match,
 * in the rules' order, as RuleRouter.find_handler tries them):
 *   - Application.default_router's rules: Rule(AnyMatches(), wildcard_router), after it
 *     add_handlers()' HostMatches rules (inserted before it); a HostMatches rule for any host
 *     (".*", ".*$": what add_handlers(r".*", ...) makes) is followed as AnyMatches is;
 *   - a rule whose target is a router (a RuleRouter's `rules`) and whose matcher is AnyMatches:
 *     its rules, in its place (4 levels);
 *   - a PathMatches rule whose target is a handler class: its regex (matched from the path's
 *     start, as regex.match does; Tornado appends '$' to a str pattern), named by its source
 *     without the anchors;
 *   - a router for a named host (add_handlers("api.example.com", ...)): the tool does not
 *     follow hosts, so its rules' paths (from the literal start of each regex) are named by
 *     none, and the other paths go on to the rules after it, as Tornado's do when no rule of
 *     the router matches them; a router behind a PathMatches: the paths under its pattern's
 *     literal start, likewise;
 *   - anything else (a rule of the app's own matcher, a pattern not starting with '/', a router
 *     deeper than 4): any path may be its, and none after it is named.
 * Tornado matches the request's path as sent, djroutes percent-decoded: a path with escapes in
 * a route's parameters may be named where Tornado would answer 404 (a request for a file
 * called "%41", say).
 */
#ifndef PYTRACE_TORNROUTES_H
#define PYTRACE_TORNROUTES_H

#include <stdint.h>
#include "djroutes.h"

/*
 * Read the rules of the Tornado app at app (a tornado.web.Application, or a subclass's) into t: 0,
 * -EINVAL (not such an app: read from a handler by a recipe that did not fit it), or -errno.
 * *skipped counts rules not read.
 */
int tornroutes__read(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t app,
		     struct djroutes *t, unsigned *skipped);

#endif
