"""The ``tickstock`` command: one subcommand per role or job."""
