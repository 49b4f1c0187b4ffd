-- errors.sql: every argument error of CREATE VIRTUAL TABLE ... USING mmap(...)
-- names what is wrong; accepted argument spellings; mode=open/new/readonly;
-- files that are not ours; mapping full.
--
-- Conventions (run by tests/sqlrun.c): a statement that returns rows returns
-- (label, ok) rows and every ok must be 1; other statements must succeed; a
-- statement after `-- error: WORDS` lines must fail with a message
-- containing all of them (and `-- error(CODE):` with that extended result
-- code); $NAME, $NAME1... and $LONGNAME (64 characters) are mapping names
-- unique to this run and $DIR a fresh directory.

-- Neither or both of name= and file=.
-- error: exactly one of name= and file=
CREATE VIRTUAL TABLE e USING mmap;
-- error: exactly one of name= and file=
CREATE VIRTUAL TABLE e USING mmap();
-- error: exactly one of name= and file=
CREATE VIRTUAL TABLE e USING mmap(size='1M');
-- error: exactly one of name= and file=
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', file='$DIR/both');

-- Unknown, repeated and malformed arguments are named.
-- error: unknown argument
-- error: foo
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', foo=1);
-- error: unknown argument
-- error: names
CREATE VIRTUAL TABLE e USING mmap(names='$NAME');
-- error: twice
-- error: size
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size='1M', size='2M');
-- error: twice
-- error: name
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', name='$NAME1');
-- error: twice
-- error: mode
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', mode='create', mode='create');
-- error: size
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size='12Q');
-- error: size
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size='');
-- error: size
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size='M');
-- error: size
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size='-1M');
-- error: size
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size='1.5M');
-- error: size
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size='99999999999999999999999');
-- error: timeout
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', timeout='x');
-- error: timeout
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', timeout='');
-- error: timeout
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', timeout='10s');
-- error: perms
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', perms='999');
-- error: perms
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', perms='0x1ff');
-- error: perms
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', perms='');
-- error: mode
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', mode='bogus');
-- error: size
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size);
SELECT 'no failed CREATE left a table behind', NOT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'e');
SELECT 'no failed CREATE left a mapping behind', mmap_unlink('$NAME') = 0 AND mmap_unlink('$NAME1') = 0;

-- Size limits: 64K to 16G.
-- error: 64K
-- error: 16G
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size='63K');
-- error: 64K
-- error: 16G
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size=65535);
-- error: 64K
-- error: 16G
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size='0');
-- error: 64K
-- error: 16G
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size='17G');
-- error: 64K
-- error: 16G
CREATE VIRTUAL TABLE e USING mmap(name='$NAME', size='16777217K');
SELECT 'no size error left a mapping behind', mmap_unlink('$NAME') = 0;

-- Bad names: the message says what a name must be.
-- error: name
-- error: 64
CREATE VIRTUAL TABLE e USING mmap(name='');
-- error: name
-- error: 64
CREATE VIRTUAL TABLE e USING mmap(name='.hidden');
-- error: name
-- error: 64
CREATE VIRTUAL TABLE e USING mmap(name='a/b');
-- error: name
-- error: 64
CREATE VIRTUAL TABLE e USING mmap(name='a b');
-- error: name
-- error: 64
CREATE VIRTUAL TABLE e USING mmap(name='caf\u00e9');
-- error: name
-- error: 64
CREATE VIRTUAL TABLE e USING mmap(name='é');
-- error: name
-- error: 64
CREATE VIRTUAL TABLE e USING mmap(name='$LONGNAMEx');
-- error: name
-- error: 64
CREATE VIRTUAL TABLE e USING mmap(name='..');

-- Good names and spellings of arguments.
CREATE VIRTUAL TABLE g1 USING mmap(name='$LONGNAME', size='64K');
SELECT 'a 64-character name is accepted', json_extract(mmap_info('g1'), '$.name') = '$LONGNAME';
DROP TABLE g1;
SELECT 'the 64-character mapping existed', mmap_unlink('$LONGNAME') = 1;
CREATE VIRTUAL TABLE g2 USING mmap(name=$NAME1, size=131072, mode=new);
SELECT 'unquoted values are accepted', json_extract(mmap_info('g2'), '$.name') = '$NAME1' AND json_extract(mmap_info('g2'), '$.capacity') = 131072;
DROP TABLE g2;
SELECT 'unlink g2', mmap_unlink('$NAME1') = 1;
CREATE VIRTUAL TABLE g3 USING mmap(name="$NAME1", size="128K", mode="new");
SELECT 'double-quoted values are accepted', json_extract(mmap_info('g3'), '$.name') = '$NAME1' AND json_extract(mmap_info('g3'), '$.capacity') = 131072;
DROP TABLE g3;
SELECT 'unlink g3', mmap_unlink('$NAME1') = 1;
CREATE VIRTUAL TABLE g4 USING mmap(name = '$NAME1', size = '1G', timeout = '0', perms = '0644', mode = 'create');
SELECT 'spaces around = are accepted; G is 1024^3', json_extract(mmap_info('g4'), '$.capacity') = 1073741824;
DROP TABLE g4;
SELECT 'unlink g4', mmap_unlink('$NAME1') = 1;
CREATE VIRTUAL TABLE g5 USING mmap(name='$NAME1', size='65536');
SELECT 'a size without suffix is bytes; 65536 is the minimum', json_extract(mmap_info('g5'), '$.capacity') = 65536;
DROP TABLE g5;
SELECT 'unlink g5', mmap_unlink('$NAME1') = 1;
CREATE VIRTUAL TABLE g6 USING mmap(name='$NAME1');
SELECT 'the default size is 1M', json_extract(mmap_info('g6'), '$.capacity') = 1048576;
DROP TABLE g6;
SELECT 'unlink g6', mmap_unlink('$NAME1') = 1;
CREATE VIRTUAL TABLE g7 USING mmap(name='$NAME1', size='2M', timeout=100, perms=0600);
SELECT 'M is 1024^2', json_extract(mmap_info('g7'), '$.capacity') = 2097152;
DROP TABLE g7;
SELECT 'unlink g7', mmap_unlink('$NAME1') = 1;
CREATE VIRTUAL TABLE g8 USING mmap(name='A-z_0.9', size='64K');
SELECT 'every allowed character is accepted', json_extract(mmap_info('g8'), '$.name') = 'A-z_0.9';
DROP TABLE g8;
SELECT 'unlink g8', mmap_unlink('A-z_0.9') = 1;

-- mode=open and mode=readonly need the mapping; mode=new must not find it.
-- error: no such mapping: $NAME2
CREATE VIRTUAL TABLE e USING mmap(name='$NAME2', mode='open');
-- error: $NAME2
CREATE VIRTUAL TABLE e USING mmap(name='$NAME2', mode='readonly');
SELECT 'mode=open and readonly did not create the mapping', mmap_unlink('$NAME2') = 0;
CREATE VIRTUAL TABLE w USING mmap(name='$NAME3', size='64K', mode='new');
INSERT INTO w VALUES ('a', 1), ('b', 'two');
-- error: already exists
-- error: $NAME3
CREATE VIRTUAL TABLE e USING mmap(name='$NAME3', mode='new');
SELECT 'mode=new on an existing mapping changed nothing', (SELECT count(*) FROM w) = 2;
-- error: $DIR/missing.mmap
CREATE VIRTUAL TABLE e USING mmap(file='$DIR/missing.mmap', mode='open');
-- error:
CREATE VIRTUAL TABLE e USING mmap(file='$DIR/no/such/dir/f.mmap');

-- mode=readonly: reads work, every write fails with SQLITE_READONLY.
CREATE VIRTUAL TABLE r USING mmap(name='$NAME3', mode='readonly');
SELECT 'a read-only table reads', (SELECT group_concat(key || '=' || value) FROM (SELECT * FROM r ORDER BY key)) = 'a=1,b=two';
SELECT 'a read-only table takes its size from the mapping', json_extract(mmap_info('r'), '$.capacity') = 65536;
SELECT 'mmap_check of a read-only table', mmap_check('r') = 'ok';
-- error(SQLITE_READONLY): read-only
INSERT INTO r VALUES ('c', 3);
-- error(SQLITE_READONLY): read-only
INSERT OR REPLACE INTO r VALUES ('a', 3);
-- error(SQLITE_READONLY): read-only
INSERT OR IGNORE INTO r VALUES ('a', 3);
-- error(SQLITE_READONLY): read-only
UPDATE r SET value = 5 WHERE key = 'a';
-- error(SQLITE_READONLY): read-only
UPDATE r SET key = 'z' WHERE key = 'a';
-- error(SQLITE_READONLY): read-only
DELETE FROM r WHERE key = 'a';
-- error(SQLITE_READONLY): read-only
DELETE FROM r;
BEGIN;
-- error(SQLITE_READONLY): read-only
INSERT INTO r VALUES ('c', 3);
COMMIT;
SELECT 'failed writes changed nothing', (SELECT group_concat(key || '=' || value) FROM (SELECT * FROM r ORDER BY key)) = 'a=1,b=two';
UPDATE w SET value = 'changed' WHERE key = 'a';
SELECT 'a read-only table sees writes through another table', (SELECT value FROM r WHERE key = 'a') = 'changed';
DROP TABLE r;

-- A file that is not ours is refused and left as it was.
CREATE TABLE x(a);
INSERT INTO x VALUES (1), (2), (3);
VACUUM INTO '$DIR/sqlite.db';
-- error: not an mmap mapping
CREATE VIRTUAL TABLE e USING mmap(file='$DIR/sqlite.db', mode='open');
-- error: not an mmap mapping
CREATE VIRTUAL TABLE e USING mmap(file='$DIR/sqlite.db');
-- error: not an mmap mapping
CREATE VIRTUAL TABLE e USING mmap(file='$DIR/sqlite.db', mode='readonly');
ATTACH '$DIR/sqlite.db' AS other;
SELECT 'the refused file is still an intact SQLite database', (SELECT group_concat(a) FROM other.x) = '1,2,3';
DETACH other;
-- error: already exists
CREATE VIRTUAL TABLE e USING mmap(file='$DIR/sqlite.db', mode='new');

-- A full mapping: SQLITE_FULL naming the mapping and its capacity; nothing changes.
CREATE VIRTUAL TABLE full USING mmap(name='$NAME4', size='64K');
INSERT INTO full VALUES ('keep', 'me');
-- error(SQLITE_FULL): full
-- error: $NAME4
-- error: 65536
INSERT INTO full WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) SELECT 'k' || i, randomblob(1000) FROM n;
SELECT 'a full mapping kept its rows', (SELECT group_concat(key || '=' || value) FROM full) = 'keep=me';
-- error(SQLITE_FULL): full
INSERT INTO full VALUES ('one', zeroblob(70000));
-- error(SQLITE_FULL): full
UPDATE full SET value = zeroblob(70000) WHERE key = 'keep';
SELECT 'a too large update changed nothing', (SELECT group_concat(key || '=' || value) FROM full) = 'keep=me';
SELECT 'mmap_check after FULL', mmap_check('full') = 'ok';
INSERT INTO full VALUES ('fits', zeroblob(20000));
SELECT 'a value that fits goes in after FULL', (SELECT length(value) FROM full WHERE key = 'fits') = 20000;
