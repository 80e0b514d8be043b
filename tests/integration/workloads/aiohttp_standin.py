"""A stand-in of an aiohttp app's router, for the tool's reader of it (src/aioroutes.c) on every
interpreter 3.8-3.15 (aiohttp itself is packaged for Debian's 3.11 only). The names and attributes
are aiohttp's (3.8, web_urldispatcher.py, web_app.py): an Application whose `_router` (a
UrlDispatcher) holds `_resources`: PlainResource (`_path`), DynamicResource (`_formatter`, and
`_pattern`: a real compiled re.Pattern, whose source the tool reads from the object),
StaticResource (`_prefix`), PrefixedSubAppResource (`_prefix`, `_app`: a sub-app whose
resources hold the prefix, as aiohttp's add_subapp leaves them), and a resource of a kind the
tool does not know. Resources' `_routes` (ResourceRoute objects with `_method`, "*" for any;
StaticResource's a dict by method) where given; a resource without that attribute is taken as
allowing any method. Prints "ready ADDR", ADDR the app's request handler (its _handle, bound, as
web_runner's Server keeps it), and waits on stdin."""
import re
import sys


class ResourceRoute:
    def __init__(self, method):
        self._method = method
        self._handler = None


def routes(resource, methods):
    """resource with a route for each of methods (aiohttp's add_route), or without `_routes`."""
    if methods is not None:
        resource._routes = [ResourceRoute(m) for m in methods]
    return resource


class PlainResource:
    def __init__(self, path):
        self._name = None
        self._path = path


class DynamicResource:
    def __init__(self, formatter, pattern):
        self._name = None
        self._pattern = re.compile(pattern)
        self._formatter = formatter


class StaticResource:
    def __init__(self, prefix):
        self._name = None
        self._prefix = prefix
        self._prefix2 = prefix + "/"
        self._routes = {"GET": ResourceRoute("GET"), "HEAD": ResourceRoute("HEAD")}


class PrefixedSubAppResource:
    def __init__(self, prefix, app):
        self._name = None
        self._prefix = prefix
        self._prefix2 = prefix + "/"
        self._app = app


class DomainResource:  # a kind the reader does not know: what comes after it is not named
    def __init__(self):
        self._name = None


class UrlDispatcher:
    def __init__(self, resources):
        self._frozen = True
        self._resources = resources
        self._named_resources = {}


class Application:
    def __init__(self, resources):
        self._router = UrlDispatcher(resources)

    async def _handle(self, request):
        pass


sub = Application([PlainResource("/api/ping"), DynamicResource("/api/items/{id}", r"/api/items/(?P<id>\d+)")])
app = Application([
    routes(PlainResource("/health/"), ["*"]),
    routes(PlainResource("/empty/"), []),  # no route: matches nothing, not in the table
    routes(DynamicResource("/n1/{rid}/", r"/n1/(?P<rid>[^{}/]+)/"), ["GET", "HEAD"]),
    routes(DynamicResource("/n1/{x}/", r"/n1/(?P<x>[^{}/]+)/"), ["POST"]),
    DynamicResource("/files/{name}.{ext}", r"/files/(?P<name>[^{}/]+)\.(?P<ext>[^{}/]+)"),
    DynamicResource("/odd/{x}", r"/odd/(?P<x>(?=a)\w+)"),  # not translatable
    StaticResource("/static"),
    PrefixedSubAppResource("/api", sub),
    PlainResource("/after/"),
    DomainResource(),
    PlainResource("/last/"),
])
handler = app._handle  # one bound method, kept
print("ready %d" % id(handler), flush=True)
sys.stdin.readline()
