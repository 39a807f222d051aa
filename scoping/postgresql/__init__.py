"""Django's PostgreSQL backend with the row-level security switch (scoping.row_security)."""
