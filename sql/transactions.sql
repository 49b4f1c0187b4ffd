-- transactions.sql: BEGIN/COMMIT/ROLLBACK, SAVEPOINT/ROLLBACK TO/RELEASE and
-- statement rollback on an mmap table behave as on the ordinary table
-- t(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID.  Every statement is
-- applied to both (often in the same transaction) and the rows compared.
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
CREATE TEMP TABLE snap(d);

INSERT INTO m VALUES ('a', 1), ('b', 'two'), ('c', 3.5), ('d', NULL), ('e', x'ee');
INSERT INTO t VALUES ('a', 1), ('b', 'two'), ('c', 3.5), ('d', NULL), ('e', x'ee');
SELECT 'start: ' || got, ok FROM same;
INSERT INTO snap SELECT d FROM dm;

-- ROLLBACK restores exactly.
BEGIN;
INSERT INTO m VALUES ('f', 6), ('g', 7);
UPDATE m SET value = 'changed' WHERE key IN ('a', 'c');
UPDATE m SET key = 'b2' WHERE key = 'b';
DELETE FROM m WHERE key = 'd';
REPLACE INTO m VALUES ('e', 'replaced');
SELECT 'changes are visible inside the transaction',
  (SELECT group_concat(key || '=' || quote(value)) FROM (SELECT * FROM m ORDER BY key)) = 'a=''changed'',b2=''two'',c=''changed'',e=''replaced'',f=6,g=7';
SELECT 'count inside the transaction', (SELECT count(*) FROM m) = 6;
ROLLBACK;
SELECT 'ROLLBACK restores every row exactly', (SELECT d FROM dm) IS (SELECT d FROM snap);
SELECT 'after ROLLBACK: ' || got, ok FROM same;
SELECT 'a rolled-back insert is not found by key', NOT EXISTS (SELECT 1 FROM m WHERE key = 'f');
SELECT 'a rolled-back delete is found by key', (SELECT count(*) FROM m WHERE key = 'd') = 1;
SELECT 'a rolled-back key update is undone', NOT EXISTS (SELECT 1 FROM m WHERE key = 'b2') AND (SELECT value FROM m WHERE key = 'b') = 'two';

-- ROLLBACK after DELETE of all rows.
BEGIN;
DELETE FROM m;
SELECT 'all rows deleted inside the transaction', (SELECT count(*) FROM m) = 0;
ROLLBACK;
SELECT 'ROLLBACK restores a table emptied by DELETE', (SELECT d FROM dm) IS (SELECT d FROM snap);

-- COMMIT keeps the changes.
BEGIN;
INSERT INTO m VALUES ('f', 6);
INSERT INTO t VALUES ('f', 6);
UPDATE m SET value = value * 10 WHERE key = 'a';
UPDATE t SET value = value * 10 WHERE key = 'a';
DELETE FROM m WHERE key = 'e';
DELETE FROM t WHERE key = 'e';
COMMIT;
SELECT 'COMMIT keeps the changes: ' || got, ok FROM same;
SELECT 'the committed changes', (SELECT value FROM m WHERE key = 'a') = 10 AND (SELECT value FROM m WHERE key = 'f') = 6
  AND NOT EXISTS (SELECT 1 FROM m WHERE key = 'e');
-- error: no transaction is active
COMMIT;

-- A transaction over m and t together: both roll back, both commit.
BEGIN;
INSERT INTO m VALUES ('both', 1);
INSERT INTO t VALUES ('both', 1);
ROLLBACK;
SELECT 'a rollback over m and t: ' || got, ok FROM same;
BEGIN;
INSERT INTO m VALUES ('both', 2);
INSERT INTO t VALUES ('both', 2);
COMMIT;
SELECT 'a commit over m and t: ' || got, ok FROM same;
DELETE FROM snap;
INSERT INTO snap SELECT d FROM dm;

-- SAVEPOINT, ROLLBACK TO, RELEASE.
SAVEPOINT s1;
INSERT INTO m VALUES ('s1', 1);
INSERT INTO t VALUES ('s1', 1);
SAVEPOINT s2;
INSERT INTO m VALUES ('s2', 2);
INSERT INTO t VALUES ('s2', 2);
UPDATE m SET value = 's2 was here' WHERE key = 'a';
UPDATE t SET value = 's2 was here' WHERE key = 'a';
DELETE FROM m WHERE key = 'b';
DELETE FROM t WHERE key = 'b';
ROLLBACK TO s2;
SELECT 'ROLLBACK TO undoes the changes after the savepoint: ' || got, ok FROM same;
SELECT 'changes before the savepoint stay', (SELECT value FROM m WHERE key = 's1') = 1 AND NOT EXISTS (SELECT 1 FROM m WHERE key = 's2')
  AND (SELECT value FROM m WHERE key = 'a') = 10 AND (SELECT value FROM m WHERE key = 'b') = 'two';
INSERT INTO m VALUES ('s2b', 3);
INSERT INTO t VALUES ('s2b', 3);
ROLLBACK TO s2;
SELECT 'a savepoint can be rolled back to twice: ' || got, ok FROM same;
INSERT INTO m VALUES ('s2c', 4);
INSERT INTO t VALUES ('s2c', 4);
RELEASE s2;
SAVEPOINT s3;
UPDATE m SET key = 'renamed' WHERE key = 's1';
UPDATE t SET key = 'renamed' WHERE key = 's1';
RELEASE s3;
RELEASE s1;
SELECT 'RELEASE commits what was not rolled back: ' || got, ok FROM same;
SELECT 'the released rows', (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key IN ('renamed', 's1', 's2', 's2b', 's2c') ORDER BY key)) = 'renamed,s2c';
-- error: no transaction is active
COMMIT;

-- Each section below starts from the same five rows.
DELETE FROM m;
DELETE FROM t;
INSERT INTO m VALUES ('a', 1), ('b', 'two'), ('c', 3.5), ('d', NULL), ('e', x'ee');
INSERT INTO t VALUES ('a', 1), ('b', 'two'), ('c', 3.5), ('d', NULL), ('e', x'ee');
DELETE FROM snap;
INSERT INTO snap SELECT d FROM dm;
SAVEPOINT outer_sp;
DELETE FROM m;
DELETE FROM t;
ROLLBACK TO outer_sp;
RELEASE outer_sp;
SELECT 'ROLLBACK TO the outermost savepoint restores all: ' || got, ok FROM same;
SELECT 'nothing lost', (SELECT d FROM dm) IS (SELECT d FROM snap);

DELETE FROM m;
DELETE FROM t;
INSERT INTO m VALUES ('a', 1), ('b', 'two'), ('c', 3.5), ('d', NULL), ('e', x'ee');
INSERT INTO t VALUES ('a', 1), ('b', 'two'), ('c', 3.5), ('d', NULL), ('e', x'ee');
DELETE FROM snap;
INSERT INTO snap SELECT d FROM dm;
BEGIN;
INSERT INTO m VALUES ('in_begin', 1);
INSERT INTO t VALUES ('in_begin', 1);
SAVEPOINT inner_sp;
INSERT INTO m VALUES ('in_savepoint', 1);
INSERT INTO t VALUES ('in_savepoint', 1);
RELEASE inner_sp;
ROLLBACK;
SELECT 'ROLLBACK undoes a released savepoint inside BEGIN: ' || got, ok FROM same;
SELECT 'neither row is there', NOT EXISTS (SELECT 1 FROM m WHERE key IN ('in_begin', 'in_savepoint'));

-- A failing statement inside BEGIN: OR ABORT undoes the statement only.
DELETE FROM m;
DELETE FROM t;
INSERT INTO m VALUES ('a', 1), ('b', 'two'), ('c', 3.5), ('d', NULL), ('e', x'ee');
INSERT INTO t VALUES ('a', 1), ('b', 'two'), ('c', 3.5), ('d', NULL), ('e', x'ee');
DELETE FROM snap;
INSERT INTO snap SELECT d FROM dm;
BEGIN;
INSERT INTO m VALUES ('kept1', 1);
INSERT INTO t VALUES ('kept1', 1);
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT OR ABORT INTO m VALUES ('undone1', 1), ('undone2', 2), ('a', 'dup'), ('never', 3);
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
INSERT OR ABORT INTO t VALUES ('undone1', 1), ('undone2', 2), ('a', 'dup'), ('never', 3);
SELECT 'inside BEGIN, OR ABORT undoes the earlier rows of the statement', NOT EXISTS (SELECT 1 FROM m WHERE key IN ('undone1', 'undone2', 'never'));
SELECT 'inside BEGIN, OR ABORT keeps the earlier statements', (SELECT value FROM m WHERE key = 'kept1') = 1;
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT INTO m VALUES ('undone3', 1), ('kept1', 'dup');
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
INSERT INTO t VALUES ('undone3', 1), ('kept1', 'dup');
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: m.key
INSERT INTO m VALUES ('undone4', 1), (NULL, 2);
-- error(SQLITE_CONSTRAINT_NOTNULL): NOT NULL constraint failed: t.key
INSERT INTO t VALUES ('undone4', 1), (NULL, 2);
-- A statement failing part-way through an UPDATE (the json error is raised
-- at the row 'c', after some other rows may have been updated) is undone.
-- error: malformed JSON
UPDATE m SET value = CASE key WHEN 'c' THEN json('{bad') ELSE 'upd' END;
-- error: malformed JSON
UPDATE t SET value = CASE key WHEN 'c' THEN json('{bad') ELSE 'upd' END;
SELECT 'a failed UPDATE inside BEGIN changed nothing', NOT EXISTS (SELECT 1 FROM m WHERE value = 'upd');
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
UPDATE m SET value = 'upd2', key = CASE key WHEN 'c' THEN 'a' ELSE key END;
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
UPDATE t SET value = 'upd2', key = CASE key WHEN 'c' THEN 'a' ELSE key END;
SELECT 'an UPDATE failing on a key inside BEGIN changed nothing', NOT EXISTS (SELECT 1 FROM m WHERE value = 'upd2');
-- error: malformed JSON
DELETE FROM m WHERE key = 'a' OR (key = 'c' AND json('{bad'));
SELECT 'a failed DELETE inside BEGIN deleted nothing', (SELECT count(*) FROM m WHERE key IN ('a', 'c')) = 2;
-- OR FAIL inside BEGIN keeps the rows before the failure.
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT OR FAIL INTO m VALUES ('failkept1', 1), ('failkept2', 2), ('a', 'dup'), ('failnever', 3);
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
INSERT OR FAIL INTO t VALUES ('failkept1', 1), ('failkept2', 2), ('a', 'dup'), ('failnever', 3);
SELECT 'inside BEGIN, OR FAIL keeps the earlier rows of the statement',
  (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key LIKE 'fail%' ORDER BY key)) = 'failkept1,failkept2';
SELECT 'inside BEGIN after the failures: ' || got, ok FROM same;
COMMIT;
SELECT 'after COMMIT: ' || got, ok FROM same;
SELECT 'the committed rows', (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key IN ('kept1', 'failkept1', 'failkept2', 'undone1', 'undone3', 'undone4', 'never', 'failnever') ORDER BY key))
  = 'failkept1,failkept2,kept1';

-- OR ROLLBACK inside BEGIN rolls back the whole transaction and ends it.
DELETE FROM m;
DELETE FROM t;
INSERT INTO m VALUES ('a', 1), ('b', 'two'), ('c', 3.5), ('d', NULL), ('e', x'ee');
INSERT INTO t VALUES ('a', 1), ('b', 'two'), ('c', 3.5), ('d', NULL), ('e', x'ee');
DELETE FROM snap;
INSERT INTO snap SELECT d FROM dm;
BEGIN;
INSERT INTO m VALUES ('gone1', 1);
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT OR ROLLBACK INTO m VALUES ('gone2', 2), ('a', 'dup');
SELECT 'OR ROLLBACK undid the whole transaction', (SELECT d FROM dm) IS (SELECT d FROM snap);
-- error: no transaction is active
COMMIT;
BEGIN;
UPDATE m SET value = 'gone' WHERE key = 'b';
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
UPDATE OR ROLLBACK m SET key = 'a' WHERE key = 'c';
SELECT 'UPDATE OR ROLLBACK undid the whole transaction', (SELECT d FROM dm) IS (SELECT d FROM snap);
-- error: no transaction is active
ROLLBACK;

-- A transaction that only reads, and an empty one.
DELETE FROM m;
DELETE FROM t;
INSERT INTO m VALUES ('a', 1), ('b', 'two'), ('c', 3.5), ('d', NULL), ('e', x'ee');
INSERT INTO t VALUES ('a', 1), ('b', 'two'), ('c', 3.5), ('d', NULL), ('e', x'ee');
DELETE FROM snap;
INSERT INTO snap SELECT d FROM dm;
BEGIN;
SELECT 'a read inside a transaction', (SELECT count(*) FROM m) = (SELECT count(*) FROM t);
COMMIT;
BEGIN;
COMMIT;
BEGIN;
ROLLBACK;
SELECT 'after empty transactions: ' || got, ok FROM same;

-- Many changes to one key in one transaction, then ROLLBACK.
BEGIN;
UPDATE m SET value = 'v1' WHERE key = 'a';
UPDATE m SET value = 'v2' WHERE key = 'a';
DELETE FROM m WHERE key = 'a';
INSERT INTO m VALUES ('a', 'v3');
UPDATE m SET key = 'a2' WHERE key = 'a';
UPDATE m SET key = 'a' WHERE key = 'a2';
SELECT 'the last change to a key is visible', (SELECT value FROM m WHERE key = 'a') = 'v3';
ROLLBACK;
SELECT 'ROLLBACK after many changes to one key', (SELECT d FROM dm) IS (SELECT d FROM snap);

-- Many rows in one transaction, then ROLLBACK and COMMIT.
BEGIN;
INSERT INTO m WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT 'bulk' || i, i FROM n;
SELECT 'bulk rows visible', (SELECT count(*) FROM m WHERE key LIKE 'bulk%') = 2000;
DELETE FROM m WHERE key LIKE 'bulk%' AND value % 2 = 0;
ROLLBACK;
SELECT 'ROLLBACK of 2000 inserts', (SELECT d FROM dm) IS (SELECT d FROM snap);
BEGIN;
INSERT INTO m WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT 'bulk' || i, i FROM n;
INSERT INTO t WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT 'bulk' || i, i FROM n;
DELETE FROM m WHERE key LIKE 'bulk%' AND value % 2 = 0;
DELETE FROM t WHERE key LIKE 'bulk%' AND value % 2 = 0;
COMMIT;
SELECT 'COMMIT of 2000 inserts and 1000 deletes', (SELECT count(*) FROM m WHERE key LIKE 'bulk%') = 1000
  AND (SELECT sum(value) FROM m WHERE key LIKE 'bulk%') = 1000000;
SELECT 'after the bulk commit m and t agree', (SELECT d FROM dm) IS (SELECT d FROM dt);

-- Writes to m made by a trigger are undone with the statement that fired it.
CREATE TABLE log(x TEXT);
CREATE TRIGGER log_to_m AFTER INSERT ON log BEGIN INSERT INTO m VALUES (new.x, 'from trigger'); END;
INSERT INTO log VALUES ('trig1');
SELECT 'a trigger writes into m', (SELECT value FROM m WHERE key = 'trig1') = 'from trigger';
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT INTO log VALUES ('trig2'), ('trig1');
SELECT 'a statement failing in its trigger is undone in m and in log',
  NOT EXISTS (SELECT 1 FROM m WHERE key = 'trig2') AND (SELECT count(*) FROM log) = 1;
BEGIN;
INSERT INTO log VALUES ('trig3');
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT INTO log VALUES ('trig4'), ('trig3');
SELECT 'inside BEGIN the failed trigger statement is undone, the earlier one kept',
  NOT EXISTS (SELECT 1 FROM m WHERE key = 'trig4') AND (SELECT value FROM m WHERE key = 'trig3') = 'from trigger';
ROLLBACK;
SELECT 'ROLLBACK undoes trigger writes', NOT EXISTS (SELECT 1 FROM m WHERE key IN ('trig3', 'trig4'))
  AND (SELECT count(*) FROM log) = 1;
