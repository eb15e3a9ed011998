"""PostgreSQL: schema and migrations, the connection pool, repositories."""
