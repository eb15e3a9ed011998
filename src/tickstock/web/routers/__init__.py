"""HTTP routers: thin, one concern each; the work is in the web services and the store."""
