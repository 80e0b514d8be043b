from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100)


class Recipe(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="recipes")
    minutes = models.PositiveIntegerField(default=30)
    instructions = models.TextField(blank=True)
