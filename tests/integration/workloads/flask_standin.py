"""A stand-in of a Flask app's URL rules, for the tool's reader of them (src/flaskroutes.c) on every
interpreter 3.8-3.15 (Flask itself is packaged for Debian's 3.11 only). The names and attributes
are Flask's and werkzeug's (2.2): a flask.app module whose `Flask` class has an instance among a
module's globals (this script's: __main__), its `url_map` (a Map: `host_matching`,
`_rules_by_endpoint`, endpoint -> [Rule]), each Rule's `rule`, `build_only` and `_converters`
(parameter -> converter object, whose `regex` is its own or its class's). Also a second module
importing the same app (found once), and a library's module holding another Flask instance (not
looked at). Prints "ready" and waits on stdin."""
import os
import sys
import tempfile
import types


class BaseConverter:
    regex = "[^/]+"


class UnicodeConverter(BaseConverter):
    def __init__(self, length=None):
        self.regex = "[^/]{%d}" % length if length else "[^/]{1,}"


class IntegerConverter(BaseConverter):
    regex = r"\d+"


class PathConverter(BaseConverter):
    regex = "[^/].*?"


class AnyConverter(BaseConverter):
    def __init__(self, *items):
        self.regex = "(?:%s)" % "|".join(items)


class LookConverter(BaseConverter):
    regex = "(?!x)[a-z]+"  # a lookahead: no POSIX equivalent


def converter(text):
    name, _, args = text.partition("(")
    if name in ("default", "string", ""):
        return UnicodeConverter(int(args.split("=")[1].rstrip(")")) if args else None)
    if name == "any":
        return AnyConverter(*args.rstrip(")").split(","))
    return {"int": IntegerConverter, "path": PathConverter, "look": LookConverter}[name]()


class Rule:
    def __init__(self, rule, endpoint, build_only=False):
        self.rule = rule
        self.is_leaf = not rule.endswith("/")
        self.strict_slashes = True
        self.build_only = build_only
        self.endpoint = endpoint
        self._converters = {}
        for part in rule.split("<")[1:]:
            spec = part.split(">")[0]
            conv, _, param = spec.rpartition(":")
            self._converters[param] = converter(conv)


class Map:
    def __init__(self, rules):
        self.strict_slashes = True
        self.merge_slashes = True
        self.host_matching = False
        self._rules_by_endpoint = {}
        for r in rules:
            self._rules_by_endpoint.setdefault(r.endpoint, []).append(r)


class Flask:
    def __init__(self, name, rules):
        self.import_name = name
        self.url_map = Map(rules)


flask_app = types.ModuleType("flask.app")
flask_app.Flask = Flask
flask_app.__file__ = "/usr/lib/python3/dist-packages/flask/app.py"
sys.modules["flask.app"] = flask_app

app = Flask(__name__, [
    Rule("/static/<path:filename>", "static"),
    Rule("/", "index"),
    Rule("/books/<int:pk>/", "book"),
    Rule("/books/<int:pk>/edit", "book"),         # a second rule of one endpoint
    Rule("/u/<name>/", "user"),
    Rule("/u/me/", "me"),                         # static: werkzeug prefers it; both match /u/me/
    Rule("/c/<string(length=2):cc>/", "country"),
    Rule("/f/<any(csv,json):fmt>", "export"),
    Rule("/l/<look:w>/", "look"),                 # not translatable
    Rule("/b/<int:id>/", "build", build_only=True),
])

# another module of the app's, importing the same app: found once
helper = types.ModuleType("standin_views")
helper.app = app
helper.__file__ = os.path.join(tempfile.gettempdir(), "standin_views.py")
sys.modules["standin_views"] = helper
# a library's module holding a Flask instance of its own: not the app
lib = types.ModuleType("somelib.testing")
lib.app = Flask("somelib", [Rule("/x/", "x")])
lib.__file__ = "/usr/lib/python3/dist-packages/somelib/testing.py"
sys.modules["somelib.testing"] = lib

print("ready", flush=True)
sys.stdin.readline()
