-- Indexes of the connection log that no query can use, paid for by every visit.
-- The console's search matches an address, a hash prefix or a nickname in one `OR`, which
-- SQLite answers by walking `connections_opened_at` (newest first) and scanning the joins for
-- the nickname (`LIKE '%…%'` can use no index): the address, hash and nickname indexes are
-- never read. Retention deletes by `opened_at` and the joins by `conn_key`, which stay.
-- Each index dropped here was one more B-tree written per visit, at a random place for the
-- hash, the address and the nickname.
DROP INDEX IF EXISTS connections_ip_hash;
DROP INDEX IF EXISTS connections_ip;
DROP INDEX IF EXISTS connection_joins_nickname;
DROP INDEX IF EXISTS connection_joins_at;
