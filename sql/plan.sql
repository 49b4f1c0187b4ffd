-- plan.sql: `key = ?` and `key IN (...)` are hash lookups (the vtab's
-- plan idxNum 1: "SCAN m VIRTUAL TABLE INDEX 1:..."; plan 3 when only the key
-- is read, so the value is not copied; 9 and 11, the same for a value of an
-- IN list), a plain scan is plan 0, a scan that
-- reads no value (count(*)) is plan 6, which copies keys only, and all return
-- the right rows.
--
-- Conventions (run by tests/sqlrun.c): a statement that returns rows returns
-- (label, ok) rows and every ok must be 1; an EXPLAIN QUERY PLAN after
-- `-- plan: WORDS` must show WORDS in its plan; $NAME is a mapping name
-- unique to this run.

CREATE VIRTUAL TABLE m USING mmap(name='$NAME', size='4M');
CREATE TABLE t(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
INSERT INTO m WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) SELECT 'k' || i, i FROM n;
INSERT INTO t SELECT key, value FROM m;
CREATE TABLE probe(k TEXT);
INSERT INTO probe VALUES ('k1'), ('k500'), ('nope');

-- plan: SCAN m VIRTUAL TABLE INDEX 1:
EXPLAIN QUERY PLAN SELECT value FROM m WHERE key = ?;
-- plan: SCAN m VIRTUAL TABLE INDEX 1:
EXPLAIN QUERY PLAN SELECT value FROM m WHERE key = 'k7';
-- plan: SCAN m VIRTUAL TABLE INDEX 1:
EXPLAIN QUERY PLAN SELECT value FROM m WHERE 'k7' = key;
-- plan: SCAN m VIRTUAL TABLE INDEX 1:
EXPLAIN QUERY PLAN SELECT value FROM m WHERE key = ?1 AND value > 3;
-- plan: SCAN m VIRTUAL TABLE INDEX 9:
EXPLAIN QUERY PLAN SELECT value FROM m WHERE key IN ('k1', 'k2', 'k3');
-- plan: SCAN m VIRTUAL TABLE INDEX 9:
EXPLAIN QUERY PLAN SELECT value FROM m WHERE key IN (?, ?);
-- plan: SCAN m VIRTUAL TABLE INDEX 9:
EXPLAIN QUERY PLAN SELECT value FROM m WHERE key IN (SELECT k FROM probe);
-- plan: SCAN m VIRTUAL TABLE INDEX 1:
EXPLAIN QUERY PLAN UPDATE m SET value = 0 WHERE key = ?;
-- plan: SCAN m VIRTUAL TABLE INDEX 3:key=? (key only)
EXPLAIN QUERY PLAN DELETE FROM m WHERE key = ?;
-- plan: SCAN m VIRTUAL TABLE INDEX 11:key=? (key only)
EXPLAIN QUERY PLAN DELETE FROM m WHERE key IN (?, ?, ?);
-- plan: SCAN m VIRTUAL TABLE INDEX 3:key=? (key only)
EXPLAIN QUERY PLAN SELECT key FROM m WHERE key = ?;
-- plan: SCAN m VIRTUAL TABLE INDEX 11:key=? (key only)
EXPLAIN QUERY PLAN SELECT count(*) FROM m WHERE key IN (?, ?);
-- plan: SCAN m VIRTUAL TABLE INDEX 1:key=?
EXPLAIN QUERY PLAN SELECT key, value FROM m WHERE key = ?;
-- plan: SCAN probe
-- plan: SCAN m VIRTUAL TABLE INDEX 1:
EXPLAIN QUERY PLAN SELECT m.value FROM probe CROSS JOIN m ON m.key = probe.k;
-- plan: SCAN m VIRTUAL TABLE INDEX 0:
EXPLAIN QUERY PLAN SELECT * FROM m;
-- plan: SCAN m VIRTUAL TABLE INDEX 0:
EXPLAIN QUERY PLAN SELECT * FROM m WHERE value = 5;
-- plan: SCAN m VIRTUAL TABLE INDEX 6:scan (key only)
EXPLAIN QUERY PLAN SELECT count(*) FROM m;
-- plan: SCAN m VIRTUAL TABLE INDEX 6:scan (key only)
EXPLAIN QUERY PLAN SELECT EXISTS (SELECT 1 FROM m);
-- plan: SCAN m VIRTUAL TABLE INDEX 0:
EXPLAIN QUERY PLAN SELECT count(value) FROM m;
-- plan: SCAN m VIRTUAL TABLE INDEX 6:scan (key only)
EXPLAIN QUERY PLAN DELETE FROM m WHERE 1;
-- plan: SCAN m VIRTUAL TABLE INDEX 0:
EXPLAIN QUERY PLAN SELECT * FROM m WHERE +key = 'k7';

-- The same queries return the right rows.
SELECT 'key = finds the row', (SELECT value FROM m WHERE key = 'k7') = 7;
SELECT 'key = missing finds nothing', NOT EXISTS (SELECT 1 FROM m WHERE key = 'k1001');
SELECT 'key = and a value condition', (SELECT count(*) FROM m WHERE key = 'k7' AND value > 3) = 1
  AND (SELECT count(*) FROM m WHERE key = 'k2' AND value > 3) = 0;
SELECT 'key IN list', (SELECT group_concat(value) FROM (SELECT value FROM m WHERE key IN ('k3', 'k1', 'nope', 'k2') ORDER BY value)) = '1,2,3';
SELECT 'key only: key = finds the row', (SELECT key FROM m WHERE key = 'k7') = 'k7';
SELECT 'key only: missing finds nothing', (SELECT count(*) FROM m WHERE key = 'k1001') = 0;
SELECT 'key only: IN counts present keys', (SELECT count(*) FROM m WHERE key IN ('k1', 'k2', 'nope')) = 2;
SELECT 'key only: EXISTS', EXISTS (SELECT 1 FROM m WHERE key = 'k9') AND NOT EXISTS (SELECT 1 FROM m WHERE key = 'k0');
SELECT 'key IN list with a repeat gives each row once', (SELECT count(*) FROM m WHERE key IN ('k3', 'k3', 'k3')) = 1;
SELECT 'key IN subquery', (SELECT group_concat(value) FROM (SELECT value FROM m WHERE key IN (SELECT k FROM probe) ORDER BY value)) = '1,500';
SELECT 'lookups in a join', (SELECT group_concat(m.value) FROM (SELECT m.value FROM probe CROSS JOIN m ON m.key = probe.k ORDER BY 1) AS m) = '1,500';
SELECT 'a scan sees every row', (SELECT count(*) FROM m) = 1000 AND (SELECT sum(value) FROM m) = 500500;
SELECT 'a scan with a value condition', (SELECT key FROM m WHERE value = 5) = 'k5';
SELECT 'every key is found by lookup', (SELECT count(*) FROM t WHERE (SELECT value FROM m WHERE m.key = t.key) = t.value) = 1000;
UPDATE m SET value = -1 WHERE key = 'k10';
DELETE FROM m WHERE key IN ('k11', 'k12', 'nope');
SELECT 'an UPDATE and a DELETE by key touched just those rows',
  (SELECT count(*) FROM m) = 998 AND (SELECT value FROM m WHERE key = 'k10') = -1 AND (SELECT sum(value) FROM m) = 500500 - 10 - 1 - 11 - 12;

-- Plan 6 (no value read) returns what a scan would, in and out of a
-- transaction, as often as SQLite runs it, with real keys for the statements
-- that read the key without saying so (DELETE, RIGHT JOIN).
SELECT 'count(*) counts every entry', (SELECT count(*) FROM m) = (SELECT count(value) FROM m);
SELECT 'count(*) of a cross join rescans per outer row',
  (SELECT count(*) FROM probe CROSS JOIN m) = 3 * 998;
BEGIN;
INSERT INTO m VALUES ('new1', 1), ('new2', 2);
DELETE FROM m WHERE key IN ('k1', 'k2', 'k3');
UPDATE m SET value = 7 WHERE key = 'k4';
SELECT 'count(*) sees the transaction''s own changes', (SELECT count(*) FROM m) = 998 + 2 - 3;
ROLLBACK;
SELECT 'count(*) after a rollback', (SELECT count(*) FROM m) = 998;
CREATE VIRTUAL TABLE e USING mmap(name='$NAME1', size='64K');
SELECT 'count(*) and EXISTS of an empty table',
  (SELECT count(*) FROM e) = 0 AND NOT EXISTS (SELECT 1 FROM e) AND EXISTS (SELECT 1 FROM m);
SELECT 'count(*) with LIMIT and OFFSET', (SELECT count(*) FROM (SELECT 1 FROM m LIMIT 5 OFFSET 990)) = 5;
SELECT 'count(*) of a RIGHT JOIN and a FULL JOIN',
  (SELECT count(*) FROM probe RIGHT JOIN m ON 1) = 3 * 998
  AND (SELECT count(*) FROM probe FULL JOIN m ON 0) = 3 + 998
  AND (SELECT count(*) FROM probe RIGHT JOIN m ON m.key = probe.k) = 998;
BEGIN;
DELETE FROM m WHERE key = 'k5';
SELECT 'count(*) after a write in the same transaction', (SELECT count(*) FROM m) = 997;
DELETE FROM m WHERE (SELECT count(*) FROM m) > 990 AND key = 'k6';
ROLLBACK;
SELECT 'a DELETE of every row (plan 6 in a writing transaction) deletes them all',
  (SELECT count(*) FROM e) = 0;
INSERT INTO e VALUES ('a', 1), ('b', 2), ('c', 3);
DELETE FROM e;
SELECT 'DELETE FROM e emptied it', (SELECT count(*) FROM e) = 0 AND (SELECT count(value) FROM e) = 0;
INSERT INTO e VALUES ('a', 1), ('b', 2), ('c', 3);
DELETE FROM e WHERE 1;
SELECT 'DELETE ... WHERE 1 emptied it', (SELECT count(*) FROM e) = 0;
CREATE VIRTUAL TABLE lk USING mmap(name='$NAME2', size='4M');
INSERT INTO lk WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
  SELECT printf('%0200d', i), i FROM n;
SELECT 'count(*) of keys of 200 bytes (rows larger than the key-only estimate)',
  (SELECT count(*) FROM lk) = 2000 AND (SELECT sum(length(key)) FROM lk) = 400000
  AND (SELECT count(DISTINCT key) FROM lk) = 2000;
