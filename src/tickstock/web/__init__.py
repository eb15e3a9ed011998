"""The consumer role: FastAPI app, pages, REST API, auth and live push to browsers.

It reads PostgreSQL and the event stream and submits commands and jobs through the bus; it
never computes analytics and never imports ``tickstock.pipeline``. ``create_app`` builds the app
from dependencies the composition root (``tickstock.ops.roles.web``) made.
"""
