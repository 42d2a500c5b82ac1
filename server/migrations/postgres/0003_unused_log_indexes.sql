-- Indexes of the connection log that no query uses, paid for by every visit (as in the SQLite
-- store's 0003). The console's search matches an address, a hash prefix or a nickname in one
-- `OR`; the nickname's `LIKE '%…%'` scans the joins whatever the other arms could use, so
-- Postgres answers it by walking `connections_opened_at` backwards and filtering: the address and
-- hash indexes are never read. Retention deletes by `opened_at` and the joins by `conn_key`,
-- which stay, as does the primary key (the closes' update). The log's rows are written ~1.45x
-- as fast without these three (docs/BENCHMARKS.md, "Churn").
DROP INDEX IF EXISTS connections_ip_hash;
DROP INDEX IF EXISTS connections_ip;
DROP INDEX IF EXISTS connection_joins_at;
