"""Several opsmon instances on one PostgreSQL: a fenced leader lease, one voice for pages."""
