"""A hostile stand-in of Django's URL patterns, for the tool's budget of reads (src/routeread.h):
a django.conf module whose settings name a urlconf whose urlpatterns is a list of 64 include()s
of itself (URLResolver-like objects: `pattern` with a `_route`, `urlconf_name` the list). Any
process can make one; without the budget the tool walked it for ever (64^8 patterns) on its
event loop. Serves HTTP on PORT (http.server, threaded) so that the tool reads its table at the
first response. Usage: django_loop_standin.py PORT"""
import http.server
import sys
import types


class RoutePattern:
    def __init__(self, route):
        self._route = route


class URLResolver:
    def __init__(self, route, urlconf):
        self.pattern = RoutePattern(route)
        self.urlconf_name = urlconf


patterns = []
patterns.extend(URLResolver("a/", patterns) for _ in range(64))
urls = types.ModuleType("loop.urls")
urls.urlpatterns = patterns
conf = types.ModuleType("django.conf")
conf.settings = types.SimpleNamespace(_wrapped=types.SimpleNamespace(ROOT_URLCONF="loop.urls"))
sys.modules["loop.urls"] = urls
sys.modules["django.conf"] = conf


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
