#!/usr/bin/python3
"""Flask + SQLAlchemy on werkzeug's threaded server (HTTP/1.1 keep-alive), against PostgreSQL
through psycopg2 (PG* environment). Usage: web_flask.py PORT NBOOKS (the app a module global of
the script, `app`), or web_flask.py seed NBOOKS, then `gunicorn 'web_flask:create_app()'` (an app
factory: no module global holds the app).

/books/        N+1: one query for the books, then one lazy load of each book's author
/books-fixed/  the same page in one query (joinedload)
/books/<id>/   one query
/writers/<name>/  a writer's books by the slug of the name ("writer-3"): one query
/health/       no query
"""
import sys

from flask import Flask, abort
from sqlalchemy import Column, ForeignKey, Integer, String, create_engine
from sqlalchemy.orm import declarative_base, joinedload, relationship, scoped_session, sessionmaker
from werkzeug.serving import WSGIRequestHandler

Base = declarative_base()


class Writer(Base):
    __tablename__ = "web_writer"
    id = Column(Integer, primary_key=True)
    name = Column(String(80))


class Book(Base):
    __tablename__ = "web_book"
    id = Column(Integer, primary_key=True)
    title = Column(String(120))
    writer_id = Column(Integer, ForeignKey("web_writer.id"))
    writer = relationship(Writer, lazy="select")


def book_label(b):
    return "%s by %s" % (b.title, b.writer.name)  # @n1_site


engine = create_engine("postgresql+psycopg2://", pool_size=8)
Session = scoped_session(sessionmaker(bind=engine))


def create_app():
    """The app, as an application factory makes it."""
    app = Flask(__name__)

    @app.teardown_appcontext
    def remove_session(exc):
        Session.remove()

    @app.route("/books/")
    def books():
        return "\n".join(book_label(b) for b in Session.query(Book).order_by(Book.id))

    @app.route("/books-fixed/")
    def books_fixed():
        return "\n".join(book_label(b) for b in Session.query(Book).options(joinedload(Book.writer)).order_by(Book.id))

    @app.route("/books/<int:pk>/")
    def book(pk):
        b = Session.query(Book).options(joinedload(Book.writer)).filter(Book.id == pk).one_or_none()
        if b is None:
            abort(404)
        return book_label(b)

    @app.route("/writers/<name>/")
    def writer_books(name):
        q = Session.query(Book).join(Book.writer).filter(Writer.name == name.replace("-", " ").capitalize())
        return "\n".join(b.title for b in q.order_by(Book.id))

    @app.route("/health/")
    def health():
        return "ok\n"

    return app


def seed(n):
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    s = Session()
    # one writer per book: a lazy load of a writer already in the session would not query
    s.add_all(Book(title="Book %d" % i, writer=Writer(name="Writer %d" % i)) for i in range(1, n + 1))
    s.commit()
    Session.remove()


if __name__ == "__main__":
    seed(int(sys.argv[2]))
    if sys.argv[1] != "seed":
        WSGIRequestHandler.protocol_version = "HTTP/1.1"
        app = create_app()  # a module global of the script, as `app = Flask(__name__)` makes it
        app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
