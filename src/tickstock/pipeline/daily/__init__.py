"""The daily processing run: orchestrator (``orchestrator.py``, start here), batch planning,
phase steps (``steps/``), progress views, the service layer of the API and CLI, and metrics."""
