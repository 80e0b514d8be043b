"""manage.py seed [--authors N] [--recipes N]: fill the demo tables (idempotent)."""
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from recipes.models import Author, Recipe

DISHES = ["Soup", "Stew", "Pie", "Salad", "Curry", "Risotto", "Tart", "Bread", "Noodles", "Gratin"]
ADJECTIVES = ["Spicy", "Smoky", "Green", "Winter", "Lemon", "Garlic", "Sunday", "Quick", "Rustic", "Creamy"]


class Command(BaseCommand):
    help = "Create the demo's authors and recipes (replaces any there are)."

    def add_arguments(self, parser):
        parser.add_argument("--authors", type=int, default=10)
        parser.add_argument("--recipes", type=int, default=50)

    @transaction.atomic
    def handle(self, *args, authors, recipes, **options):
        if Author.objects.count() == authors and Recipe.objects.count() == recipes:
            self.stdout.write(f"seed: {authors} authors and {recipes} recipes already there")
            return
        with connection.cursor() as c:  # ids start at 1 again: the traffic asks for /recipes/1/..
            c.execute("TRUNCATE recipes_recipe, recipes_author RESTART IDENTITY")
        people = Author.objects.bulk_create(Author(name=f"Cook {i + 1}") for i in range(authors))
        Recipe.objects.bulk_create(
            Recipe(
                title=f"{ADJECTIVES[i % len(ADJECTIVES)]} {DISHES[(i // len(ADJECTIVES)) % len(DISHES)]} #{i + 1}",
                author=people[i % len(people)],
                minutes=10 + (i * 7) % 80,
                instructions="Chop, stir, taste, repeat. " * 3,
            )
            for i in range(recipes)
        )
        self.stdout.write(f"seed: created {authors} authors and {recipes} recipes")
