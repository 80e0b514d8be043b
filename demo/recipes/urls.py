"""The demo's /api/ routes: an include() with a re_path(), as older Django sites write them."""
from django.urls import re_path

from . import views

urlpatterns = [
    re_path(r"^v1/recipes/(?P<pk>[0-9]+)/$", views.recipe_detail),
]
