"""A stand-in of a Starlette app's routes, for the tool's reader of them (src/starroutes.c) on
every interpreter 3.8-3.15 (Starlette is packaged for Debian's 3.11 only). The names and
attributes are Starlette's (0.26, routing.py, applications.py): a module `starlette.applications`
whose Starlette class holds `router` (a Router, whose `routes` is a list); Route (`path_regex`: a
real compiled re.Pattern, made as Starlette's compile_path makes it; `path_format`; `methods`: a
set, or None), WebSocketRoute, Mount (`path_regex`, `path_format`, `_base_app`: a Router, a
Starlette app or another ASGI app), Host. The app is a module global of this script, with a
subclass's instance (FastAPI's way) mounted under it, itself a global too. Prints "ready" and
waits on stdin."""
import re
import sys
import types

CONVERTORS = {"str": "[^/]+", "path": ".*", "int": "[0-9]+", "float": r"[0-9]+(\.[0-9]+)?",
              "uuid": "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"}
PARAM_REGEX = re.compile("{([a-zA-Z_][a-zA-Z0-9_]*)(:[a-zA-Z_][a-zA-Z0-9_]*)?}")


def compile_path(path):
    """Starlette's: the regex of a path, and its format (the parameters without converters)."""
    regex, fmt, idx = "^", "", 0
    for m in PARAM_REGEX.finditer(path):
        name, conv = m.groups("str")
        regex += re.escape(path[idx:m.start()]) + "(?P<%s>%s)" % (name, CONVERTORS[conv.lstrip(":")])
        fmt += path[idx:m.start()] + "{%s}" % name
        idx = m.end()
    return re.compile(regex + re.escape(path[idx:]) + "$"), fmt + path[idx:]


class Route:
    def __init__(self, path, methods=None):
        self.path = path
        self.endpoint = None
        self.name = None
        self.include_in_schema = True
        if methods is None:
            self.methods = None
        else:
            self.methods = {m.upper() for m in methods}
            if "GET" in self.methods:
                self.methods.add("HEAD")
        self.path_regex, self.path_format = compile_path(path)


class WebSocketRoute:
    def __init__(self, path):
        self.path = path
        self.path_regex, self.path_format = compile_path(path)


class Router:
    def __init__(self, routes):
        self.routes = list(routes)
        self.redirect_slashes = True


class Mount:
    def __init__(self, path, app=None, routes=None):
        self.path = path.rstrip("/")
        self._base_app = app if app is not None else Router(routes)
        self.app = self._base_app
        self.path_regex, self.path_format = compile_path(self.path + "/{path:path}")


class Host:
    def __init__(self, host, app):
        self.host = host
        self.app = app


class StaticFiles:  # a mounted ASGI app of another kind: no routes
    def __init__(self, directory):
        self.directory = directory


class Starlette:
    def __init__(self, routes):
        self.debug = False
        self.router = Router(routes)


class FastAPI(Starlette):
    pass


mod = types.ModuleType("starlette.applications")
mod.Starlette = Starlette
sys.modules["starlette"] = types.ModuleType("starlette")
sys.modules["starlette.applications"] = mod

look = Route("/look/{w}")
look.path_regex = re.compile(r"^/look/(?P<w>(?=a)\w+)$")  # a lookahead: not translatable
sub = FastAPI([Route("/things/{tid}", ["GET"]), Route("/things/", ["GET", "POST"])])
app = Starlette([
    Route("/"),
    Route("/items/{iid:int}/", ["GET"]),
    Route("/items/{name}/", ["POST"]),
    Route("/users/me"),
    Route("/users/{uid}"),
    WebSocketRoute("/ws"),
    Mount("/api", routes=[Route("/fixed/{rid:int}/", ["GET"]), Route("/files/{p:path}"),
                          Mount("/deep", routes=[Route("/x/{f:float}")])]),
    Mount("/v2", app=sub),
    Mount("/static", app=StaticFiles("/tmp")),
    Mount("/u/{uid}", routes=[Route("/posts/{pid:uuid}")]),
    look,
    Route("/after/"),
    Host("example.org", app=StaticFiles("/tmp")),
    Route("/last/"),
])
print("ready", flush=True)
sys.stdin.readline()
