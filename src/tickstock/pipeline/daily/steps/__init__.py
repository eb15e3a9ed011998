"""The work of each phase on one symbol batch: ``importer`` (data import), ``indicators``,
``patterns``, ``outcomes``. Each is a callable ``BatchWork -> BatchOutcome``."""
