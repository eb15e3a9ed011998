"""The producer: job handlers, the worker, the daily run, the scheduler, live streaming and the
pipeline HTTP API. Never imports ``tickstock.web``; the two meet through contracts, bus and
store.
"""
