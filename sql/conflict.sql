-- conflict.sql: constraint errors and conflict resolution (OR REPLACE,
-- IGNORE, ABORT, FAIL, ROLLBACK, REPLACE) on an mmap table give the result
-- codes, messages and rows that the ordinary table
-- t(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID gives.  Every
-- statement is applied to both and the rows compared.
--
-- Conventions (run by tests/sqlrun.c): a statement that returns rows returns
-- (label, ok) rows and every ok must be 1; other statements must succeed; a
-- statement after `-- error(CODE): WORDS` must fail with that extended result
-- code and a message containing WORDS; $NAME is a mapping name unique to
-- this run.

CREATE VIRTUAL TABLE m USING mmap(name='$NAME');
CREATE TABLE t(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
CREATE TEMP VIEW dm AS SELECT group_concat(quote(key) || '=' || quote(value), ', ') AS d FROM (SELECT key, value FROM m ORDER BY key);
CREATE TEMP VIEW dt AS SELECT group_concat(quote(key) || '=' || quote(value), ', ') AS d FROM (SELECT key, value FROM t ORDER BY key);
CREATE TEMP VIEW same AS SELECT 'm: ' || coalesce((SELECT d FROM dm), '-') || ' / t: ' || coalesce((SELECT d FROM dt), '-') AS got,
  (SELECT d FROM dm) IS (SELECT d FROM dt) AS ok;

INSERT INTO m VALUES ('a', 1), ('b', 2), ('c', 3);
INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3);

-- A duplicate key is a UNIQUE constraint error; nothing changes.
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT INTO m VALUES ('a', 10);
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
INSERT INTO t VALUES ('a', 10);
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT OR ABORT INTO m VALUES ('b', 10);
SELECT 'a duplicate changes nothing: ' || got, ok FROM same;
SELECT 'the old value is kept', (SELECT value FROM m WHERE key = 'a') = 1;

-- A NULL key is a NOT NULL constraint error.
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: m.key
INSERT INTO m VALUES (NULL, 1);
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: t.key
INSERT INTO t VALUES (NULL, 1);
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: m.key
INSERT INTO m(value) VALUES (1);
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: m.key
INSERT INTO m DEFAULT VALUES;
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: t.key
INSERT INTO t DEFAULT VALUES;
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: m.key
INSERT OR REPLACE INTO m VALUES (NULL, 1);
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: t.key
INSERT OR REPLACE INTO t VALUES (NULL, 1);
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: m.key
UPDATE m SET key = NULL WHERE key = 'a';
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: t.key
UPDATE t SET key = NULL WHERE key = 'a';
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: m.key
UPDATE OR REPLACE m SET key = NULL WHERE key = 'a';
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: t.key
UPDATE OR REPLACE t SET key = NULL WHERE key = 'a';
SELECT 'NULL keys change nothing: ' || got, ok FROM same;
INSERT OR IGNORE INTO m VALUES (NULL, 1), ('d', 4);
INSERT OR IGNORE INTO t VALUES (NULL, 1), ('d', 4);
SELECT 'INSERT OR IGNORE skips a NULL key: ' || got, ok FROM same;
UPDATE OR IGNORE m SET key = NULL WHERE key = 'd';
UPDATE OR IGNORE t SET key = NULL WHERE key = 'd';
SELECT 'UPDATE OR IGNORE skips a NULL key: ' || got, ok FROM same;

-- INSERT OR REPLACE and REPLACE.
INSERT OR REPLACE INTO m VALUES ('a', 'replaced'), ('e', 5);
INSERT OR REPLACE INTO t VALUES ('a', 'replaced'), ('e', 5);
SELECT 'INSERT OR REPLACE: ' || got, ok FROM same;
SELECT 'the value was replaced', (SELECT value FROM m WHERE key = 'a') = 'replaced' AND (SELECT count(*) FROM m WHERE key = 'a') = 1;
REPLACE INTO m VALUES ('b', x'bb');
REPLACE INTO t VALUES ('b', x'bb');
SELECT 'REPLACE: ' || got, ok FROM same;
REPLACE INTO m VALUES ('x', 1), ('x', 2), ('x', 3);
REPLACE INTO t VALUES ('x', 1), ('x', 2), ('x', 3);
SELECT 'REPLACE of one key thrice keeps the last: ' || got, ok FROM same;
SELECT 'the last value won', (SELECT value FROM m WHERE key = 'x') = 3;
INSERT OR REPLACE INTO m SELECT key, value || '!' FROM t WHERE key IN ('c', 'd');
INSERT OR REPLACE INTO t SELECT key, value || '!' FROM t WHERE key IN ('c', 'd');
SELECT 'INSERT OR REPLACE ... SELECT: ' || got, ok FROM same;

-- INSERT OR IGNORE.
INSERT OR IGNORE INTO m VALUES ('a', 'ignored'), ('f', 6), ('f', 'ignored too'), ('g', 7);
INSERT OR IGNORE INTO t VALUES ('a', 'ignored'), ('f', 6), ('f', 'ignored too'), ('g', 7);
SELECT 'INSERT OR IGNORE keeps old rows and adds new ones: ' || got, ok FROM same;
SELECT 'the first of two duplicates in one statement wins', (SELECT value FROM m WHERE key = 'f') = 6;

-- A failing multi-row INSERT (autocommit): ABORT undoes the whole statement,
-- FAIL keeps the rows before the failure, ROLLBACK undoes the statement.
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT INTO m VALUES ('h', 8), ('i', 9), ('a', 'dup'), ('j', 10);
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
INSERT INTO t VALUES ('h', 8), ('i', 9), ('a', 'dup'), ('j', 10);
SELECT 'a failing multi-row INSERT is undone: ' || got, ok FROM same;
SELECT 'none of its rows is there', NOT EXISTS (SELECT 1 FROM m WHERE key IN ('h', 'i', 'j'));
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT OR ABORT INTO m VALUES ('h', 8), ('h', 'dup'), ('j', 10);
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
INSERT OR ABORT INTO t VALUES ('h', 8), ('h', 'dup'), ('j', 10);
SELECT 'INSERT OR ABORT with a duplicate inside the statement is undone: ' || got, ok FROM same;
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT INTO m SELECT key || '2', value FROM t UNION ALL SELECT 'a', 'dup';
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
INSERT INTO t SELECT key || '2', value FROM t UNION ALL SELECT 'a', 'dup';
SELECT 'a failing INSERT ... SELECT is undone: ' || got, ok FROM same;
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT OR FAIL INTO m VALUES ('h', 8), ('i', 9), ('a', 'dup'), ('j', 10);
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
INSERT OR FAIL INTO t VALUES ('h', 8), ('i', 9), ('a', 'dup'), ('j', 10);
SELECT 'INSERT OR FAIL keeps the rows before the failure: ' || got, ok FROM same;
SELECT 'rows before the failure are there, after it not',
  (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key IN ('h', 'i', 'j') ORDER BY key)) = 'h,i';
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: m.key
INSERT OR FAIL INTO m VALUES ('k', 11), (NULL, 'null'), ('l', 12);
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: t.key
INSERT OR FAIL INTO t VALUES ('k', 11), (NULL, 'null'), ('l', 12);
SELECT 'INSERT OR FAIL stopped by a NULL key keeps the rows before: ' || got, ok FROM same;
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT OR ROLLBACK INTO m VALUES ('m', 13), ('a', 'dup');
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
INSERT OR ROLLBACK INTO t VALUES ('m', 13), ('a', 'dup');
SELECT 'INSERT OR ROLLBACK in autocommit undoes the statement: ' || got, ok FROM same;
SELECT 'the row before the failure is not there', NOT EXISTS (SELECT 1 FROM m WHERE key = 'm');

-- UPDATE onto an existing key: error, OR IGNORE, OR REPLACE, OR FAIL.
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
UPDATE m SET key = 'b' WHERE key = 'a';
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
UPDATE t SET key = 'b' WHERE key = 'a';
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
UPDATE OR FAIL m SET key = 'b' WHERE key = 'a';
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
UPDATE OR ROLLBACK m SET key = 'b' WHERE key = 'a';
SELECT 'a key updated onto an existing key changes nothing: ' || got, ok FROM same;
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
UPDATE m SET key = CASE key WHEN 'a' THEN 'b' WHEN 'b' THEN 'a' END WHERE key IN ('a', 'b');
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
UPDATE t SET key = CASE key WHEN 'a' THEN 'b' WHEN 'b' THEN 'a' END WHERE key IN ('a', 'b');
SELECT 'swapping two keys in one UPDATE fails and changes nothing: ' || got, ok FROM same;
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
UPDATE m SET key = 'same', value = 0 WHERE key IN ('c', 'd', 'e');
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
UPDATE t SET key = 'same', value = 0 WHERE key IN ('c', 'd', 'e');
SELECT 'an UPDATE of several keys onto one is undone: ' || got, ok FROM same;
UPDATE OR IGNORE m SET key = 'b' WHERE key = 'a';
UPDATE OR IGNORE t SET key = 'b' WHERE key = 'a';
SELECT 'UPDATE OR IGNORE onto an existing key skips the row: ' || got, ok FROM same;
UPDATE OR IGNORE m SET key = key || '_' WHERE key IN ('f', 'g');
UPDATE OR IGNORE t SET key = key || '_' WHERE key IN ('f', 'g');
SELECT 'UPDATE OR IGNORE without conflicts updates: ' || got, ok FROM same;
UPDATE OR REPLACE m SET key = 'b' WHERE key = 'a';
UPDATE OR REPLACE t SET key = 'b' WHERE key = 'a';
SELECT 'UPDATE OR REPLACE onto an existing key replaces it: ' || got, ok FROM same;
SELECT 'the moved row has its own value, the other row is gone',
  (SELECT value FROM m WHERE key = 'b') = 'replaced' AND NOT EXISTS (SELECT 1 FROM m WHERE key = 'a');
UPDATE OR REPLACE m SET key = 'one', value = 'merged' WHERE key IN ('h', 'i', 'x');
UPDATE OR REPLACE t SET key = 'one', value = 'merged' WHERE key IN ('h', 'i', 'x');
SELECT 'UPDATE OR REPLACE of several keys onto one leaves one row: ' || got, ok FROM same;
UPDATE OR REPLACE m SET value = 'plain' WHERE key = 'k';
UPDATE OR REPLACE t SET value = 'plain' WHERE key = 'k';
SELECT 'UPDATE OR REPLACE of a value only: ' || got, ok FROM same;
SELECT 'final count', (SELECT count(*) FROM m) = (SELECT count(*) FROM t) AND (SELECT count(*) FROM t) > 5;
