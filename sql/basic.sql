-- basic.sql: INSERT, SELECT, UPDATE and DELETE on an mmap table behave as on
-- the ordinary table CREATE TABLE t(key TEXT PRIMARY KEY NOT NULL, value)
-- WITHOUT ROWID.  Every change is applied to both, m and t, and the two are
-- compared; queries are checked against their expected results.
--
-- Conventions (run by tests/sqlrun.c): a statement that returns rows returns
-- (label, ok) rows and every ok must be 1; other statements must succeed; a
-- statement after `-- error: WORDS` must fail with a message containing
-- WORDS; $NAME is a mapping name unique to this run.

CREATE VIRTUAL TABLE m USING mmap(name='$NAME', size='1M');
CREATE TABLE t(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
CREATE TEMP VIEW dm AS SELECT group_concat(quote(key) || '=' || quote(value) || ':' || typeof(value), ', ') AS d
  FROM (SELECT key, value FROM m ORDER BY key);
CREATE TEMP VIEW dt AS SELECT group_concat(quote(key) || '=' || quote(value) || ':' || typeof(value), ', ') AS d
  FROM (SELECT key, value FROM t ORDER BY key);
CREATE TEMP VIEW same AS SELECT 'm: ' || coalesce((SELECT d FROM dm), '-') || ' / t: ' || coalesce((SELECT d FROM dt), '-') AS got,
  (SELECT d FROM dm) IS (SELECT d FROM dt) AS ok;

SELECT 'a new table is empty', (SELECT count(*) FROM m) = 0;
SELECT 'the columns are those of the ordinary table',
  (SELECT group_concat(name || ':' || type || ':' || "notnull" || ':' || pk, ',') FROM pragma_table_info('m')) =
  'key:TEXT:1:1,value::0:0' AND
  (SELECT group_concat(name || ':' || type || ':' || "notnull" || ':' || pk, ',') FROM pragma_table_info('t')) =
  'key:TEXT:1:1,value::0:0';
SELECT 'select * gives the columns key and value',
  (SELECT group_concat(name) FROM pragma_table_xinfo('m') WHERE hidden = 0) = 'key,value';

-- INSERT: one row, several rows, INSERT ... SELECT, column lists.
INSERT INTO m VALUES ('apple', 1);
INSERT INTO t VALUES ('apple', 1);
SELECT 'one row inserted: ' || got, ok FROM same;
SELECT 'the inserted row reads back', (SELECT value FROM m WHERE key = 'apple') = 1;
INSERT INTO m VALUES ('banana', 'yellow'), ('cherry', 2.5), ('date', NULL), ('elder', x'00ff'), ('fig', 42), ('grape', -7);
INSERT INTO t VALUES ('banana', 'yellow'), ('cherry', 2.5), ('date', NULL), ('elder', x'00ff'), ('fig', 42), ('grape', -7);
SELECT 'multi-row insert: ' || got, ok FROM same;
SELECT 'count after multi-row insert', (SELECT count(*) FROM m) = 7;
INSERT INTO m SELECT key || '2', value FROM m WHERE key < 'c';
INSERT INTO t SELECT key || '2', value FROM t WHERE key < 'c';
SELECT 'insert ... select from the same table: ' || got, ok FROM same;
INSERT INTO m(value, key) VALUES (3, 'kiwi');
INSERT INTO t(value, key) VALUES (3, 'kiwi');
INSERT INTO m(key) VALUES ('lime');
INSERT INTO t(key) VALUES ('lime');
SELECT 'insert with a column list: ' || got, ok FROM same;
SELECT 'an omitted value is NULL', (SELECT typeof(value) FROM m WHERE key = 'lime') = 'null';
SELECT 'count after all inserts', (SELECT count(*) FROM m) = 11;
SELECT 'm and t hold the same rows (EXCEPT both ways)',
  NOT EXISTS (SELECT key, value FROM m EXCEPT SELECT key, value FROM t) AND
  NOT EXISTS (SELECT key, value FROM t EXCEPT SELECT key, value FROM m);

-- SELECT with WHERE on key.
SELECT 'key = text finds the row', (SELECT value FROM m WHERE key = 'banana') = 'yellow';
SELECT 'reversed operands: text = key', (SELECT value FROM m WHERE 'banana' = key) = 'yellow';
SELECT 'key = missing finds nothing', NOT EXISTS (SELECT 1 FROM m WHERE key = 'nope');
SELECT 'key = is case-sensitive', NOT EXISTS (SELECT 1 FROM m WHERE key = 'APPLE');
SELECT 'key = ... COLLATE NOCASE ignores case', (SELECT group_concat(key) FROM m WHERE key = 'APPLE' COLLATE NOCASE) = 'apple';
SELECT 'key IS text', (SELECT value FROM m WHERE key IS 'fig') = 42;
SELECT 'key IS NULL finds nothing', NOT EXISTS (SELECT 1 FROM m WHERE key IS NULL);
SELECT 'key = NULL finds nothing', NOT EXISTS (SELECT 1 FROM m WHERE key = NULL);
SELECT 'key IS NOT NULL finds all', (SELECT count(*) FROM m WHERE key IS NOT NULL) = 11;
SELECT 'unary plus on key (no index)', (SELECT value FROM m WHERE +key = 'fig') = 42;
SELECT 'key = subquery', (SELECT value FROM m WHERE key = (SELECT max(key) FROM t WHERE key < 'h')) = -7;
SELECT 'key range > and <=',
  (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key > 'b' AND key <= 'date' ORDER BY key)) = 'banana,banana2,cherry,date';
SELECT 'key BETWEEN',
  (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key BETWEEN 'c' AND 'f' ORDER BY key)) = 'cherry,date,elder';
SELECT 'key < ', (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key < 'b' ORDER BY key)) = 'apple,apple2';
SELECT 'key >= ', (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key >= 'kiwi' ORDER BY key)) = 'kiwi,lime';
SELECT 'key LIKE', (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key LIKE 'B%' ORDER BY key)) = 'banana,banana2';
SELECT 'key GLOB', (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key GLOB '*e' ORDER BY key)) = 'apple,date,grape,lime';
SELECT 'key IN list',
  (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key IN ('fig', 'apple', 'nope', 'fig') ORDER BY key)) = 'apple,fig';
SELECT 'key IN subquery',
  (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key IN (SELECT 'grape' UNION SELECT 'kiwi' UNION SELECT 'zzz') ORDER BY key)) = 'grape,kiwi';
SELECT 'key IN empty list', NOT EXISTS (SELECT 1 FROM m WHERE key IN ());
SELECT 'key NOT IN list', (SELECT count(*) FROM m WHERE key NOT IN ('apple', 'banana', 'nope')) = 9;
SELECT 'key = ... OR key = ...',
  (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key = 'date' OR key = 'elder' OR key = 'x' ORDER BY key)) = 'date,elder';
SELECT 'key = and a value condition', (SELECT count(*) FROM m WHERE key = 'fig' AND value = 42) = 1
  AND (SELECT count(*) FROM m WHERE key = 'fig' AND value = 43) = 0;

-- SELECT with WHERE on value.
SELECT 'value = integer', (SELECT group_concat(key) FROM (SELECT key FROM m WHERE value = 1 ORDER BY key)) = 'apple,apple2';
SELECT 'value = text', (SELECT group_concat(key) FROM (SELECT key FROM m WHERE value = 'yellow' ORDER BY key)) = 'banana,banana2';
SELECT 'value > 2 (texts and blobs sort above numbers)',
  (SELECT group_concat(key) FROM (SELECT key FROM m WHERE value > 2 ORDER BY key)) = 'banana,banana2,cherry,elder,fig,kiwi';
SELECT 'value IS NULL', (SELECT group_concat(key) FROM (SELECT key FROM m WHERE value IS NULL ORDER BY key)) = 'date,lime';
SELECT 'value = blob', (SELECT key FROM m WHERE value = x'00ff') = 'elder';
SELECT 'typeof(value) = text', (SELECT group_concat(key) FROM (SELECT key FROM m WHERE typeof(value) = 'text' ORDER BY key)) = 'banana,banana2';
SELECT 'value query same as on t',
  (SELECT group_concat(key) FROM (SELECT key FROM m WHERE value < 3 OR value IS NULL ORDER BY key)) IS
  (SELECT group_concat(key) FROM (SELECT key FROM t WHERE value < 3 OR value IS NULL ORDER BY key));

-- ORDER BY, LIMIT, OFFSET, DISTINCT.
SELECT 'ORDER BY key DESC LIMIT', (SELECT group_concat(key) FROM (SELECT key FROM m ORDER BY key DESC LIMIT 3)) = 'lime,kiwi,grape';
SELECT 'LIMIT OFFSET', (SELECT group_concat(key) FROM (SELECT key FROM m ORDER BY key LIMIT 2 OFFSET 3)) = 'banana2,cherry';
SELECT 'LIMIT 0', NOT EXISTS (SELECT 1 FROM m LIMIT 0);
SELECT 'OFFSET past the end', NOT EXISTS (SELECT 1 FROM m LIMIT 5 OFFSET 11);
SELECT 'LIMIT without ORDER BY returns that many', (SELECT count(*) FROM (SELECT key FROM m LIMIT 4)) = 4;
SELECT 'ORDER BY value, key (mixed types) as on t',
  (SELECT group_concat(key) FROM (SELECT key FROM m ORDER BY value, key)) =
  'date,lime,grape,apple,apple2,cherry,kiwi,fig,banana,banana2,elder' AND
  (SELECT group_concat(key) FROM (SELECT key FROM t ORDER BY value, key)) =
  'date,lime,grape,apple,apple2,cherry,kiwi,fig,banana,banana2,elder';
SELECT 'ORDER BY value DESC NULLS FIRST LIMIT 3',
  (SELECT group_concat(key) FROM (SELECT key FROM m ORDER BY value DESC NULLS FIRST, key LIMIT 3)) = 'date,lime,elder';
SELECT 'DISTINCT values (one NULL)', (SELECT count(*) FROM (SELECT DISTINCT value FROM m)) = 8;
SELECT 'UNION of m and t is one copy', (SELECT count(*) FROM (SELECT key, value FROM m UNION SELECT key, value FROM t)) = 11;

-- Aggregates.
SELECT 'count(*)', (SELECT count(*) FROM m) = 11;
SELECT 'count(value) skips NULLs', (SELECT count(value) FROM m) = 9;
SELECT 'sum of numbers', (SELECT sum(value) FROM m WHERE typeof(value) IN ('integer', 'real')) = 42.5;
SELECT 'min and max key', (SELECT min(key) || ',' || max(key) FROM m) = 'apple,lime';
SELECT 'max value is the blob', (SELECT max(value) FROM m) = x'00ff';
SELECT 'GROUP BY typeof',
  (SELECT group_concat(g, ',') FROM (SELECT typeof(value) || ':' || count(*) AS g FROM m GROUP BY typeof(value) ORDER BY 1)) =
  'blob:1,integer:5,null:2,real:1,text:2';
SELECT 'GROUP BY HAVING',
  (SELECT group_concat(v) FROM (SELECT value AS v FROM m GROUP BY value HAVING count(*) > 1 ORDER BY value)) = '1,yellow';
SELECT 'avg and total as on t',
  (SELECT avg(value) || '/' || total(value) FROM m WHERE typeof(value) IN ('integer', 'real')) IS
  (SELECT avg(value) || '/' || total(value) FROM t WHERE typeof(value) IN ('integer', 'real'));

-- Joins with ordinary tables and with itself.
CREATE TABLE colors(fruit TEXT, color TEXT);
INSERT INTO colors VALUES ('apple', 'red'), ('banana', 'yellow'), ('fig', 'purple'), ('mango', 'orange');
SELECT 'inner join on key',
  (SELECT group_concat(x) FROM (SELECT c.fruit || ':' || c.color || ':' || m.value AS x FROM colors c JOIN m ON m.key = c.fruit ORDER BY c.fruit)) =
  'apple:red:1,banana:yellow:yellow,fig:purple:42';
SELECT 'inner join, mmap table outer',
  (SELECT group_concat(x) FROM (SELECT m.key || ':' || c.color AS x FROM m JOIN colors c ON c.fruit = m.key ORDER BY m.key)) =
  'apple:red,banana:yellow,fig:purple';
SELECT 'cross join forcing lookups into m',
  (SELECT group_concat(x) FROM (SELECT m.key AS x FROM colors c CROSS JOIN m ON m.key = c.fruit ORDER BY 1)) = 'apple,banana,fig';
SELECT 'left join keeps unmatched rows',
  (SELECT group_concat(x) FROM (SELECT c.fruit || '=' || quote(m.value) AS x FROM colors c LEFT JOIN m ON m.key = c.fruit ORDER BY c.fruit)) =
  'apple=1,banana=''yellow'',fig=42,mango=NULL';
SELECT 'join m with t on key matches every row', (SELECT count(*) FROM m JOIN t USING (key) WHERE m.value IS t.value) = 11;
SELECT 'self join on value',
  (SELECT group_concat(x) FROM (SELECT a.key || '|' || b.key AS x FROM m a JOIN m b ON a.value = b.value AND a.key < b.key ORDER BY 1)) =
  'apple|apple2,banana|banana2';
SELECT 'correlated subquery on m', (SELECT count(*) FROM t WHERE value = (SELECT value FROM m WHERE m.key = t.key)) = 9;
SELECT 'EXISTS on m', (SELECT group_concat(fruit) FROM (SELECT fruit FROM colors WHERE NOT EXISTS (SELECT 1 FROM m WHERE key = fruit))) = 'mango';
SELECT 'natural join with t (NULL values do not match)',
  (SELECT count(*) FROM (SELECT * FROM m NATURAL JOIN t)) = 9;

-- rowid does not exist, as on a WITHOUT ROWID table.
-- error: no such column: rowid
SELECT rowid FROM m;
-- error: no such column: rowid
SELECT rowid FROM t;

-- UPDATE of values.
UPDATE m SET value = value + 1 WHERE typeof(value) = 'integer';
UPDATE t SET value = value + 1 WHERE typeof(value) = 'integer';
SELECT 'update of integer values: ' || got, ok FROM same;
SELECT 'updated value reads back', (SELECT value FROM m WHERE key = 'fig') = 43;
UPDATE m SET value = 'v:' || key WHERE key IN ('date', 'lime');
UPDATE t SET value = 'v:' || key WHERE key IN ('date', 'lime');
UPDATE m SET value = NULL WHERE key = 'cherry';
UPDATE t SET value = NULL WHERE key = 'cherry';
SELECT 'update with IN and to NULL: ' || got, ok FROM same;
UPDATE m SET value = 'never' WHERE key = 'nope';
UPDATE t SET value = 'never' WHERE key = 'nope';
SELECT 'update matching nothing: ' || got, ok FROM same;
UPDATE m SET value = (SELECT color FROM colors WHERE fruit = m.key) WHERE key IN (SELECT fruit FROM colors);
UPDATE t SET value = (SELECT color FROM colors WHERE fruit = t.key) WHERE key IN (SELECT fruit FROM colors);
SELECT 'update from a correlated subquery: ' || got, ok FROM same;
UPDATE m SET value = c.color || '!' FROM colors c WHERE c.fruit = m.key;
UPDATE t SET value = c.color || '!' FROM colors c WHERE c.fruit = t.key;
SELECT 'UPDATE ... FROM: ' || got, ok FROM same;
UPDATE m SET value = value || value WHERE key > 'e' AND key < 'h';
UPDATE t SET value = value || value WHERE key > 'e' AND key < 'h';
SELECT 'update over a key range: ' || got, ok FROM same;
UPDATE m SET key = key, value = 99 WHERE key = 'kiwi';
UPDATE t SET key = key, value = 99 WHERE key = 'kiwi';
SELECT 'update setting the key to itself: ' || got, ok FROM same;

-- UPDATE of keys.
UPDATE m SET key = upper(key) WHERE key LIKE 'a%';
UPDATE t SET key = upper(key) WHERE key LIKE 'a%';
SELECT 'update of keys: ' || got, ok FROM same;
SELECT 'the old key is gone', NOT EXISTS (SELECT 1 FROM m WHERE key = 'apple');
SELECT 'the new key finds the row', (SELECT value FROM m WHERE key = 'APPLE') = 'red!';
UPDATE m SET key = key || '!' WHERE key BETWEEN 'c' AND 'e';
UPDATE t SET key = key || '!' WHERE key BETWEEN 'c' AND 'e';
SELECT 'update of keys over a range: ' || got, ok FROM same;
UPDATE m SET key = 'kiwi2', value = 'moved' WHERE key = 'kiwi';
UPDATE t SET key = 'kiwi2', value = 'moved' WHERE key = 'kiwi';
SELECT 'update of key and value together: ' || got, ok FROM same;
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
UPDATE m SET key = 'fig' WHERE key = 'grape';
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
UPDATE t SET key = 'fig' WHERE key = 'grape';
SELECT 'update of a key onto an existing key changes nothing: ' || got, ok FROM same;
UPDATE OR REPLACE m SET key = 'fig' WHERE key = 'grape';
UPDATE OR REPLACE t SET key = 'fig' WHERE key = 'grape';
SELECT 'update or replace of a key onto an existing key: ' || got, ok FROM same;
SELECT 'the replaced row took the moved value', (SELECT value FROM m WHERE key = 'fig') = '-6-6'
  AND NOT EXISTS (SELECT 1 FROM m WHERE key = 'grape');
SELECT 'count after update or replace', (SELECT count(*) FROM m) = 10;

-- DELETE.
DELETE FROM m WHERE key = 'nope';
DELETE FROM t WHERE key = 'nope';
SELECT 'delete matching nothing: ' || got, ok FROM same;
DELETE FROM m WHERE key = 'banana2';
DELETE FROM t WHERE key = 'banana2';
SELECT 'delete by key: ' || got, ok FROM same;
SELECT 'a deleted key is not found', NOT EXISTS (SELECT 1 FROM m WHERE key = 'banana2');
DELETE FROM m WHERE key BETWEEN 'A' AND 'B';
DELETE FROM t WHERE key BETWEEN 'A' AND 'B';
SELECT 'delete of a key range: ' || got, ok FROM same;
DELETE FROM m WHERE key IN ('fig', 'lime', 'nope');
DELETE FROM t WHERE key IN ('fig', 'lime', 'nope');
SELECT 'delete of an IN list: ' || got, ok FROM same;
DELETE FROM m WHERE value IS NULL OR typeof(value) = 'blob';
DELETE FROM t WHERE value IS NULL OR typeof(value) = 'blob';
SELECT 'delete by value: ' || got, ok FROM same;
SELECT 'rows left after deletes', (SELECT group_concat(key) FROM (SELECT key FROM m ORDER BY key)) = 'banana,date!,elder,kiwi2';
INSERT INTO m VALUES ('fig', 'again');
INSERT INTO t VALUES ('fig', 'again');
SELECT 'a deleted key can be inserted again: ' || got, ok FROM same;
DELETE FROM m;
DELETE FROM t;
SELECT 'delete of all rows: ' || got, ok FROM same;
SELECT 'the table is empty', (SELECT count(*) FROM m) = 0 AND NOT EXISTS (SELECT 1 FROM m WHERE key = 'fig');
INSERT INTO m VALUES ('after', 'delete all');
SELECT 'the table works after delete of all rows', (SELECT group_concat(key || '=' || value) FROM m) = 'after=delete all';

-- RETURNING: INSERT ... RETURNING works; SQLite itself refuses UPDATE and
-- DELETE ... RETURNING on any virtual table.
INSERT INTO m VALUES ('ret', 1) RETURNING 'INSERT ... RETURNING gives the new row', key = 'ret' AND value = 1;
-- error: UPDATE RETURNING is not available on virtual tables
UPDATE m SET value = value + 1 WHERE key = 'ret' RETURNING 'UPDATE ... RETURNING', value = 2;
-- error: DELETE RETURNING is not available on virtual tables
DELETE FROM m WHERE key = 'ret' RETURNING 'DELETE ... RETURNING', value = 1;
SELECT 'the refused statements changed nothing', (SELECT value FROM m WHERE key = 'ret') = 1;
DELETE FROM m WHERE key = 'ret';

-- DROP TABLE only detaches: the mapping and its rows stay.
DROP TABLE m;
CREATE VIRTUAL TABLE m2 USING mmap(name='$NAME', mode='open');
SELECT 'rows survive DROP TABLE', (SELECT group_concat(key || '=' || value) FROM m2) = 'after=delete all';
