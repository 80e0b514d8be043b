"""Views of the demo service. /recipes/ has a deliberate N+1: recipe_name() below reads
recipe.author, which runs one SELECT on recipes_author per recipe. Keep recipe_name() at the
top of this file: docs and tests name its line."""
from html import escape

from django.http import Http404, HttpResponse

from .models import Recipe


def recipe_name(r):
    return f"{r.title} by {r.author.name}"  # N+1: one query per recipe unless select_related


def render_list(title, names):
    items = "".join(f"<li>{escape(n)}</li>" for n in names)
    return HttpResponse(f"<!doctype html><title>{title}</title><h1>{title}</h1><ul>{items}</ul>")


def recipes(request):
    """N+1: one query for the recipes, then one per recipe for its author."""
    names = []
    for r in Recipe.objects.all().order_by("id"):
        names.append(recipe_name(r))
    return render_list("Recipes", names)


def recipes_fixed(request):
    """The same page in one query: select_related joins the author."""
    names = []
    for r in Recipe.objects.select_related("author").order_by("id"):
        names.append(recipe_name(r))
    return render_list("Recipes", names)


def recipe_detail(request, pk):
    try:
        r = Recipe.objects.select_related("author").get(pk=pk)
    except Recipe.DoesNotExist:
        raise Http404("no such recipe")
    return HttpResponse(
        f"<!doctype html><title>{escape(r.title)}</title><h1>{escape(recipe_name(r))}</h1>"
        f"<p>{r.minutes} minutes</p><p>{escape(r.instructions)}</p>"
    )


def author_recipes(request, name):
    """/authors/<slug:name>/: an author's recipes, by the slug of the name ("author-3")."""
    titles = Recipe.objects.filter(author__name__iexact=name.replace("-", " ")).order_by("id")
    return render_list("Recipes by " + name, [r.title for r in titles])


def is_prime(n):
    if n < 2:
        return False
    d = 2
    while d * d <= n:
        if n % d == 0:
            return False
        d += 1
    return True


def count_primes(limit):
    return sum(1 for n in range(limit) if is_prime(n))


def cpu(request):
    """Pure Python work, no queries: about 15 ms on CPython 3.11."""
    limit = int(request.GET.get("n", "20000"))
    return HttpResponse(f"{count_primes(min(limit, 1_000_000))} primes below {limit}\n",
                        content_type="text/plain")


def health(request):
    return HttpResponse("ok\n", content_type="text/plain")


def index(request):
    return HttpResponse(
        "pytrace-bpf demo: /recipes/ (N+1)  /recipes-fixed/  /recipes/<id>/  /authors/<name>/  /api/v1/recipes/<id>/  /cpu/  /health/\n",
        content_type="text/plain",
    )
