"""gunicorn settings for a checkout: `gunicorn -c gunicorn.conf.py 'app:create_app()'` (what `make
run` does). The settings themselves, and why, are in gateway/gunicorn_conf.py, which is installed
with the package (`responses-gateway serve` uses it). It is run afresh each time gunicorn reads
this file, as on SIGHUP, so a reload re-reads the settings and the API keys file."""
import os
import runpy

globals().update(runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "gateway",
                                             "gunicorn_conf.py")))
