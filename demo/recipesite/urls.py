from django.urls import include, path

from recipes import views

urlpatterns = [
    path("", views.index),
    path("recipes/", views.recipes),
    path("recipes-fixed/", views.recipes_fixed),
    path("recipes/<int:pk>/", views.recipe_detail),
    path("authors/<slug:name>/", views.author_recipes),
    path("api/", include("recipes.urls")),
    path("cpu/", views.cpu),
    path("health/", views.health),
]
