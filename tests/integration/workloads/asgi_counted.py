"""Settings for the demo's Django under ASGI in test_async.py: the demo's own, and a middleware
that tells each response's statements in an X-Queries header (Django's debug cursor logs every
execute the view and the ORM ran; its frames are Django's, so the call sites the tool reports
stay the view's), so that the test can check each request's count against the tool's. Under
ASGI this sync middleware runs where the view runs: in asgiref's thread-sensitive thread."""
from recipesite.settings import *  # noqa: F401,F403

MIDDLEWARE = ["asgi_counted.CountQueries"]


class CountQueries:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.db import connection

        connection.force_debug_cursor = True
        connection.queries_log.clear()
        response = self.get_response(request)
        response["X-Queries"] = str(len(connection.queries_log))
        return response
