"""The web role's own read queries over the schema (read-only; the executing side writes).

Where another package's store module already answers a question the web asks, the web uses
that; these are the page- and API-shaped queries nobody else needs.
"""
