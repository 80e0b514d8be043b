# gunicorn settings of the demo:  cd demo && /usr/bin/python3 /usr/bin/gunicorn -c gunicorn.conf.py
# Command-line options override these, e.g. --worker-class gthread --threads 4.
# DEMO_PORT (default 8077), DEMO_WORKERS (default 2).
import os

wsgi_app = "recipesite.wsgi:application"
chdir = os.path.dirname(os.path.abspath(__file__))
pythonpath = chdir
bind = "127.0.0.1:" + os.environ.get("DEMO_PORT", "8077")
workers = int(os.environ.get("DEMO_WORKERS", "2"))
worker_class = "sync"
timeout = 30
graceful_timeout = 5
accesslog = None
errorlog = "-"
loglevel = "info"
proc_name = "pytrace-demo"
