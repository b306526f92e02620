"""gunicorn settings for production: ``gunicorn -c gunicorn.conf.py 'app:create_app()'``.

Each API worker process also runs the sweeper thread (when SWEEPER_ENABLED); sweeps lock
runs with SKIP LOCKED, so several sweepers never do the same work twice. Likewise the
scheduler thread (when SCHEDULER_ENABLED): a fire time starts one run however many tick.
"""

import gc
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_class = "gthread"
timeout = 120
accesslog = None
# No shared control socket: several API processes on one machine must not collide.
control_socket_disable = True


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    # The loaded app (modules, SQLAlchemy mappers, the OpenAPI spec: ~200,000 objects) never
    # becomes garbage: move it out of the collector's reach. Otherwise every full
    # collection walks it, 90-120 ms on the 2-core bench machine, and that pause lands on
    # whichever request triggered it (the p99 of a large workflow run's GET).
    gc.freeze()
    from app.runs.sweeper import start_sweeper
    from app.schedules.firing import start_scheduler

    app = worker.wsgi
    flask_app = getattr(app, "callable", None) or app
    settings = getattr(flask_app, "config", {}).get("SETTINGS")
    if settings is None:  # a host app embedding the service starts them (app/embedding.py)
        return
    if settings.SWEEPER_ENABLED:
        start_sweeper(flask_app)
    if settings.SCHEDULER_ENABLED:
        start_scheduler(flask_app)
