-- parts.sql: a mapping split into parts (parts=4) behaves as an ordinary
-- table t(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID: autocommit
-- statements that write one key or many, transactions, savepoints and
-- statement rollback across parts, and a second connection.
--
-- Conventions (run by tests/sqlrun.c): a statement that returns rows returns
-- (label, ok) rows and every ok must be 1; other statements must succeed; a
-- statement after `-- error(CODE): WORDS` must fail with that extended result
-- code and a message containing WORDS; $NAME is a mapping name unique to
-- this run.

CREATE VIRTUAL TABLE m USING mmap(name='$NAME', size='1M', parts=4);
CREATE VIRTUAL TABLE m2 USING mmap(name='$NAME', mode='open', parts=1);
CREATE TABLE t(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
CREATE TEMP VIEW dm AS SELECT group_concat(quote(key) || '=' || quote(value), ', ') AS d FROM (SELECT key, value FROM m ORDER BY key);
CREATE TEMP VIEW dt AS SELECT group_concat(quote(key) || '=' || quote(value), ', ') AS d FROM (SELECT key, value FROM t ORDER BY key);
CREATE TEMP VIEW same AS SELECT 'm: ' || coalesce((SELECT d FROM dm), '-') || ' / t: ' || coalesce((SELECT d FROM dt), '-') AS got,
  (SELECT d FROM dm) IS (SELECT d FROM dt) AS ok;

SELECT 'a mapping made with parts=4 says so', json_extract(mmap_info('m'), '$.parts') = 4 AND json_extract(mmap_info('m'), '$.format') = 3;
SELECT 'opening it with another parts= keeps its own', json_extract(mmap_info('m2'), '$.parts') = 4;

-- One key per autocommit statement, then many in one.
INSERT INTO m VALUES ('a', 1);
INSERT INTO t VALUES ('a', 1);
INSERT OR REPLACE INTO m VALUES ('a', 2);
INSERT OR REPLACE INTO t VALUES ('a', 2);
WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < 200) INSERT INTO m SELECT 'k' || value, value FROM n;
WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < 200) INSERT INTO t SELECT 'k' || value, value FROM n;
INSERT OR REPLACE INTO m VALUES ('k1', 'one'), ('k2', 'two'), ('k3', 'three'), ('k4', 'four'), ('k5', 'five');
INSERT OR REPLACE INTO t VALUES ('k1', 'one'), ('k2', 'two'), ('k3', 'three'), ('k4', 'four'), ('k5', 'five');
SELECT 'after autocommit inserts: ' || got, ok FROM same;
SELECT 'every part got keys', (SELECT count(*) FROM m) = 201;
SELECT 'the other connection sees them', (SELECT count(*) FROM m2) = 201 AND (SELECT value FROM m2 WHERE key = 'k3') = 'three';

-- A statement that fails half-way leaves nothing, whichever parts it wrote.
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE
INSERT INTO m VALUES ('n1', 1), ('n2', 2), ('n3', 3), ('n4', 4), ('k7', 7);
SELECT 'a failed multi-row insert leaves no row', NOT EXISTS (SELECT 1 FROM m WHERE key GLOB 'n*');
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL
INSERT OR REPLACE INTO m VALUES ('n1', 1), ('n2', 2), ('n3', 3), ('n4', 4), (NULL, 5);
SELECT 'a failed multi-row replace leaves no row', NOT EXISTS (SELECT 1 FROM m WHERE key GLOB 'n*');

-- Updates and deletes read first: they hold every part.
UPDATE m SET value = value * 10 WHERE typeof(value) = 'integer';
UPDATE t SET value = value * 10 WHERE typeof(value) = 'integer';
UPDATE m SET key = key || '-moved' WHERE key IN ('k10', 'k20', 'k30');
UPDATE t SET key = key || '-moved' WHERE key IN ('k10', 'k20', 'k30');
DELETE FROM m WHERE key GLOB 'k1?';
DELETE FROM t WHERE key GLOB 'k1?';
SELECT 'after updates and deletes: ' || got, ok FROM same;

-- Transactions and savepoints across parts.
BEGIN;
INSERT INTO m VALUES ('x1', 1), ('x2', 2), ('x3', 3);
SAVEPOINT s1;
INSERT OR REPLACE INTO m VALUES ('x1', 'changed'), ('y1', 1), ('y2', 2);
DELETE FROM m WHERE key GLOB 'k5*';
ROLLBACK TO s1;
INSERT OR REPLACE INTO m VALUES ('z1', 'z');
COMMIT;
BEGIN;
INSERT INTO t VALUES ('x1', 1), ('x2', 2), ('x3', 3);
INSERT OR REPLACE INTO t VALUES ('z1', 'z');
COMMIT;
SELECT 'after a transaction with a savepoint: ' || got, ok FROM same;
BEGIN;
DELETE FROM m;
SELECT 'a delete of everything is seen inside', (SELECT count(*) FROM m) = 0;
ROLLBACK;
SELECT 'after ROLLBACK: ' || got, ok FROM same;
SELECT 'the second connection agrees', (SELECT group_concat(key || value) FROM (SELECT * FROM m2 ORDER BY key)) = (SELECT group_concat(key || value) FROM (SELECT * FROM t ORDER BY key));
SELECT 'the check finds every part sound', mmap_check('m') = 'ok';

-- Bad values of parts= are refused and name the argument.
-- error(SQLITE_ERROR): parts
CREATE VIRTUAL TABLE bad1 USING mmap(name='$NAME-b', parts=0);
-- error(SQLITE_ERROR): parts
CREATE VIRTUAL TABLE bad2 USING mmap(name='$NAME-b', parts=65);
-- error(SQLITE_ERROR): minimum of 64K a part
CREATE VIRTUAL TABLE bad3 USING mmap(name='$NAME-b', size='1M', parts=32);
