-- Servers are tenants (DESIGN 7a): on SQLite this migration moved coins into wallets. A
-- PostgreSQL database starts with wallets already (0001 holds the schema after SQLite's 0002),
-- so there is nothing to do here; the file keeps both histories numbered alike.
SELECT 1;
