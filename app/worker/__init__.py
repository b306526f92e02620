"""The worker side: Celery tasks that execute runs.

Nothing here touches the database or imports the Flask app: a worker holds only the broker
URL, the API's address and a PIPELINES_WORKER key (``WORKER_API_SERVER``,
``WORKER_API_TOKEN``) and the object store settings, and reports everything through the
worker API (app/runs/worker_routes.py).
"""
