"""A stand-in of Django's URL configuration, for the tool's reader of URL patterns (src/djroutes.c)
on every interpreter 3.8-3.15 (Django itself is packaged for Debian's 3.11 only). The names and
attributes are Django's (django/urls/resolvers.py, django/conf/__init__.py, 2.0-5.x): a
django.conf module whose `settings` (a LazySettings) holds `_wrapped` (a Settings) holding
ROOT_URLCONF; that module's `urlpatterns`, of URLPattern and URLResolver objects whose `pattern`
is a RoutePattern (`_route`, `_is_endpoint`, `converters`: parameter -> converter object, whose
class holds `regex`) or a RegexPattern (`_regex`, `_is_endpoint`), a URLResolver's
`urlconf_name` being the included module or a list; and at the end, i18n_patterns(): a
URLResolver whose pattern is a LocalePrefixPattern (`prefix_default_language` False), with
settings.LANGUAGES and LANGUAGE_CODE. Prints "ready" and waits on stdin."""
import sys
import types


class LazySettings:
    def __init__(self, wrapped):
        # as django.utils.functional.LazyObject: through __dict__ (made at once: the values of
        # 3.11+'s instances move into a dict)
        self.__dict__["_wrapped"] = wrapped


class Settings:
    def __init__(self, urlconf):
        setattr(self, "ROOT_URLCONF", urlconf)
        self.DEBUG = False
        self.LANGUAGE_CODE = "en"
        self.LANGUAGES = [("en", "English"), ["fr", "French"], ("pt-br", "Brazilian Portuguese")]  # pairs of either


class IntConverter:
    regex = "[0-9]+"


class StringConverter:
    regex = "[^/]+"


class SlugConverter(StringConverter):
    regex = "[-a-zA-Z0-9_]+"


class FourDigitYearConverter:
    regex = "[0-9]{4}"


class HexConverter:
    regex = r"(?i)[0-9a-f]+"  # a flag: no POSIX equivalent


CONVERTERS = {"int": IntConverter(), "str": StringConverter(), "slug": SlugConverter(),
              "yyyy": FourDigitYearConverter(), "hex": HexConverter()}


class RoutePattern:
    def __init__(self, route, is_endpoint):
        self._route = route
        self._regex_dict = {}
        self._is_endpoint = is_endpoint
        self.name = None
        self.converters = {}
        for part in route.split("<")[1:]:
            conv, _, param = part.split(">")[0].rpartition(":")
            self.converters[param] = CONVERTERS[conv or "str"]


class RegexPattern:
    def __init__(self, regex, is_endpoint):
        self._regex = regex
        self._regex_dict = {}
        self._is_endpoint = is_endpoint
        self.name = None
        self.converters = {}


class LocalePrefixPattern:
    def __init__(self, prefix_default_language=True):
        self.prefix_default_language = prefix_default_language
        self.converters = {}


class URLPattern:
    def __init__(self, pattern, callback):
        self.pattern = pattern
        self.callback = callback
        self.default_args = {}
        self.name = None


class URLResolver:
    def __init__(self, pattern, urlconf_name):
        self.pattern = pattern
        self.urlconf_name = urlconf_name
        self.callback = None
        self.default_kwargs = {}
        self.namespace = None
        self.app_name = None
        self._populated = False


def view(request):
    pass


def path(route, target):
    if isinstance(target, (list, tuple, types.ModuleType)):
        return URLResolver(RoutePattern(route, False), target)
    return URLPattern(RoutePattern(route, True), target)


def re_path(regex, target):
    if isinstance(target, (list, tuple, types.ModuleType)):
        return URLResolver(RegexPattern(regex, False), target)
    return URLPattern(RegexPattern(regex, True), target)


api = types.ModuleType("standin_api_urls")
api.urlpatterns = [
    re_path(r"^v1/items/(?P<pk>\d+)/$", view),
    path("v1/archive/<yyyy:year>/", view),
]
sys.modules[api.__name__] = api

urls = types.ModuleType("standin_urls")
urls.urlpatterns = [
    path("", view),
    path("items/<int:pk>/", view),
    path("tags/<slug:tag>/", view),
    path("api/", api),
    path("shop/", (path("<str:category>/<int:id>/", view),)),
    path("blob/<hex:h>/", view),
    path("blobs/", view),
    re_path(r"^feed(?=\.xml)", view),
    path("feed.json", view),
    path("after/", view),
]
# a long list: the dict and list reads in chunks
urls.urlpatterns += [path("page%d/" % i, view) for i in range(150)]
# i18n_patterns(..., prefix_default_language=False), as Django appends it
urls.urlpatterns += [URLResolver(LocalePrefixPattern(False), [path("about/", view), path("news/<slug:s>/", view)])]
sys.modules[urls.__name__] = urls

conf = types.ModuleType("django.conf")
conf.settings = LazySettings(Settings("standin_urls"))
sys.modules["django.conf"] = conf

print("ready", flush=True)
sys.stdin.readline()
