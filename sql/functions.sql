-- functions.sql: mmap_info, mmap_check, mmap_flush and mmap_unlink.
--
-- Conventions (run by tests/sqlrun.c): a statement that returns rows returns
-- (label, ok) rows and every ok must be 1; other statements must succeed; a
-- statement after `-- error: WORDS` must fail with a message containing
-- WORDS; $NAME, $NAME1... are mapping names unique to this run and $DIR a
-- fresh directory.

CREATE VIRTUAL TABLE temp.cfg USING mmap(name='$NAME', size='1M');
INSERT INTO cfg VALUES ('foo', 'hello'), ('bar', 77), ('baz', x'0102');

-- mmap_info: a JSON object with entries, capacity, used, format, name.
SELECT 'mmap_info is valid JSON', json_valid(mmap_info('cfg'));
SELECT 'mmap_info is an object', json_type(mmap_info('cfg')) = 'object';
SELECT 'entries', json_extract(mmap_info('cfg'), '$.entries') = 3;
SELECT 'capacity is the size in bytes', json_extract(mmap_info('cfg'), '$.capacity') = 1048576;
SELECT 'used is a positive integer', json_type(mmap_info('cfg'), '$.used') = 'integer' AND json_extract(mmap_info('cfg'), '$.used') > 0;
SELECT 'used is below the capacity', json_extract(mmap_info('cfg'), '$.used') < json_extract(mmap_info('cfg'), '$.capacity');
SELECT 'format is 2', json_extract(mmap_info('cfg'), '$.format') = 2;
SELECT 'name is the mapping name', json_extract(mmap_info('cfg'), '$.name') = '$NAME';
SELECT 'a named mapping has no file', json_type(mmap_info('cfg'), '$.file') IS NULL;
SELECT 'kv_bytes is at least the bytes of keys and values',
  json_extract(mmap_info('cfg'), '$.kv_bytes') >= (SELECT sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))) FROM cfg WHERE typeof(value) <> 'integer');
SELECT 'slots is a positive integer', json_type(mmap_info('cfg'), '$.slots') = 'integer' AND json_extract(mmap_info('cfg'), '$.slots') >= 3;
SELECT 'the schema-qualified name works', mmap_info('temp.cfg') = mmap_info('cfg');
SELECT 'info follows changes', (SELECT json_extract(mmap_info('cfg'), '$.entries') FROM (SELECT 1)) = (SELECT count(*) FROM cfg);
INSERT INTO cfg VALUES ('big', zeroblob(100000));
SELECT 'entries after an insert', json_extract(mmap_info('cfg'), '$.entries') = 4;
SELECT 'used grows by at least the value', json_extract(mmap_info('cfg'), '$.used') > 100000;
SELECT 'kv_bytes grows by at least the value', json_extract(mmap_info('cfg'), '$.kv_bytes') > 100000;
DELETE FROM cfg WHERE key = 'big';
SELECT 'entries after a delete', json_extract(mmap_info('cfg'), '$.entries') = 3;
BEGIN;
INSERT INTO cfg VALUES ('pending', 1);
SELECT 'entries count the transaction''s own pending rows', json_extract(mmap_info('cfg'), '$.entries') = 4;
ROLLBACK;
SELECT 'entries after rollback', json_extract(mmap_info('cfg'), '$.entries') = 3;
-- error: nosuchtable
SELECT mmap_info('nosuchtable');
CREATE TABLE plain(key, value);
-- error: plain
SELECT mmap_info('plain');
-- error:
SELECT mmap_info(NULL);
-- error:
SELECT mmap_check('nosuchtable');

-- mmap_check.
SELECT 'mmap_check of a healthy mapping', mmap_check('cfg') = 'ok';
SELECT 'mmap_check by schema-qualified name', mmap_check('temp.cfg') = 'ok';
INSERT INTO cfg WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) SELECT 'n' || i, randomblob(i) FROM n;
DELETE FROM cfg WHERE key LIKE 'n%' AND length(value) % 3 = 0;
UPDATE cfg SET value = zeroblob(length(value) * 2) WHERE key LIKE 'n%' AND length(value) % 3 = 1;
SELECT 'mmap_check after churn', mmap_check('cfg') = 'ok';
SELECT 'entries after churn', json_extract(mmap_info('cfg'), '$.entries') = (SELECT count(*) FROM cfg);

-- Two tables on one mapping, in one connection.
CREATE VIRTUAL TABLE temp.cfg2 USING mmap(name='$NAME', mode='open');
SELECT 'a second table on the mapping sees the rows', (SELECT count(*) FROM cfg2) = (SELECT count(*) FROM cfg);
INSERT INTO cfg2 VALUES ('via2', 2);
SELECT 'a row written through one table is read through the other', (SELECT value FROM cfg WHERE key = 'via2') = 2;
SELECT 'mode=open takes the size from the mapping', json_extract(mmap_info('cfg2'), '$.capacity') = 1048576;
DROP TABLE cfg2;

-- mmap_flush and mmap_info of a file-backed table.
CREATE VIRTUAL TABLE temp.f USING mmap(file='$DIR/f.mmap', size='64K');
INSERT INTO f VALUES ('persist', 'yes'), ('n', 1);
SELECT 'mmap_flush of a file table returns 1', mmap_flush('f') = 1;
SELECT 'mmap_flush by schema-qualified name', mmap_flush('temp.f') = 1;
SELECT 'mmap_info names the file', json_extract(mmap_info('f'), '$.file') = '$DIR/f.mmap';
SELECT 'a file mapping has no name', json_type(mmap_info('f'), '$.name') IS NULL;
SELECT 'file capacity', json_extract(mmap_info('f'), '$.capacity') = 65536;
SELECT 'file entries', json_extract(mmap_info('f'), '$.entries') = 2;
SELECT 'mmap_check of a file table', mmap_check('f') = 'ok';
DROP TABLE f;
CREATE VIRTUAL TABLE temp.f2 USING mmap(file='$DIR/f.mmap', mode='open');
SELECT 'a file table reopened has the rows', (SELECT group_concat(key || '=' || value) FROM (SELECT * FROM f2 ORDER BY key)) = 'n=1,persist=yes';
SELECT 'reopened file table takes its size from the file', json_extract(mmap_info('f2'), '$.capacity') = 65536;
DROP TABLE f2;
CREATE VIRTUAL TABLE temp.f3 USING mmap(file='$DIR/f.mmap', size='2M');
SELECT 'mode=create on an existing file keeps its size and rows', json_extract(mmap_info('f3'), '$.capacity') = 65536
  AND (SELECT count(*) FROM f3) = 2;
DROP TABLE f3;

-- mmap_unlink: 1 when it existed, then 0.
CREATE VIRTUAL TABLE temp.u USING mmap(name='$NAME1', size='64K');
INSERT INTO u VALUES ('k', 'v');
DROP TABLE u;
CREATE VIRTUAL TABLE temp.u USING mmap(name='$NAME1', mode='open');
SELECT 'the mapping survives DROP TABLE', (SELECT value FROM u WHERE key = 'k') = 'v';
DROP TABLE u;
SELECT 'mmap_unlink of an existing mapping returns 1', mmap_unlink('$NAME1') = 1;
SELECT 'mmap_unlink again returns 0', mmap_unlink('$NAME1') = 0;
SELECT 'mmap_unlink of a name never used returns 0', mmap_unlink('$NAME2') = 0;
-- error: no such mapping: $NAME1
CREATE VIRTUAL TABLE temp.u USING mmap(name='$NAME1', mode='open');
CREATE VIRTUAL TABLE temp.u USING mmap(name='$NAME1', size='64K');
SELECT 'a name unlinked and created again starts empty', (SELECT count(*) FROM u) = 0;
SELECT 'an unlinked name is created anew with the new size', json_extract(mmap_info('u'), '$.capacity') = 65536;
-- A table whose mapping was unlinked keeps working on its own mapping.
SELECT 'unlink while a table is open returns 1', mmap_unlink('$NAME1') = 1;
INSERT INTO u VALUES ('still', 'works');
SELECT 'the open table still works after unlink', (SELECT value FROM u WHERE key = 'still') = 'works';
-- error: name
SELECT mmap_unlink('bad/name');
