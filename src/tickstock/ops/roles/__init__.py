"""Composition roots, one module per role: ``run(settings, instance)`` builds the role's clients
(pool, Redis, clock), wires its package, and blocks until SIGTERM/SIGINT, then shuts down cleanly.

``tickstock <role>`` calls it; ``tickstock up`` starts each as a subprocess.
"""

ROLES = ("web", "api", "worker", "scheduler", "stream")
