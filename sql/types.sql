-- types.sql: keys take TEXT affinity and values keep their storage class and
-- exact bits, as in the ordinary table t(key TEXT PRIMARY KEY NOT NULL, value)
-- WITHOUT ROWID.  Every row goes into both m and t; they are compared with an
-- exact dump (type and hex of every key, type and exact form of every value).
--
-- Conventions (run by tests/sqlrun.c): a statement that returns rows returns
-- (label, ok) rows and every ok must be 1; other statements must succeed; a
-- statement after `-- error: WORDS` must fail with a message containing
-- WORDS; $NAME is a mapping name unique to this run.

CREATE VIRTUAL TABLE m USING mmap(name='$NAME', size='4M');
CREATE TABLE t(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
-- The exact form of a value: reals with 17 digits and the sign of zero.
CREATE TEMP VIEW dm AS SELECT group_concat(typeof(key) || ':' || hex(key) || '=' || typeof(value) || ':' ||
  CASE typeof(value) WHEN 'real' THEN printf('%!.17g', value) || iif(value = 0 AND atan2(value, -1) < 0, '(-0)', '')
  ELSE hex(value) END, ', ') AS d FROM (SELECT key, value FROM m ORDER BY key);
CREATE TEMP VIEW dt AS SELECT group_concat(typeof(key) || ':' || hex(key) || '=' || typeof(value) || ':' ||
  CASE typeof(value) WHEN 'real' THEN printf('%!.17g', value) || iif(value = 0 AND atan2(value, -1) < 0, '(-0)', '')
  ELSE hex(value) END, ', ') AS d FROM (SELECT key, value FROM t ORDER BY key);
CREATE TEMP VIEW same AS SELECT 'm: ' || coalesce((SELECT d FROM dm), '-') || ' / t: ' || coalesce((SELECT d FROM dt), '-') AS got,
  (SELECT d FROM dm) IS (SELECT d FROM dt) AS ok;
CREATE TEMP VIEW v AS SELECT key, value FROM m;

-- Values: every storage class, with the edges of each.
CREATE TEMP TABLE sample(key, value);
INSERT INTO sample VALUES
  ('int_one', 1), ('int_zero', 0), ('int_neg', -1),
  ('int_max', 9223372036854775807), ('int_min', -9223372036854775808),
  ('int_2_53_plus_1', 9007199254740993),
  ('real_one', 1.0), ('real_neg_zero', -0.0), ('real_zero', 0.0), ('real_max', 1e308), ('real_neg_max', -1e308),
  ('real_dbl_max', 1.7976931348623157e308), ('real_denorm_min', 4.9406564584124654e-324),
  ('real_third', 1.0 / 3), ('real_sum', 0.1 + 0.2), ('real_pi', 3.141592653589793),
  ('text_empty', ''), ('text_nul', CAST(x'6100620063' AS TEXT)), ('text_utf8', 'h' || char(233) || 'llo ' || char(10003)),
  ('text_digits', '123'), ('text_real', '1.5'), ('text_quote', 'it''s'),
  ('blob_empty', x''), ('blob_bytes', x'00010203feff'), ('blob_text_bytes', x'616263'),
  ('null', NULL),
  ('blob_random', randomblob(100000)), ('text_long', printf('%.*c', 300000, 'z'));
INSERT INTO t SELECT key, value FROM sample;
INSERT INTO m SELECT key, value FROM t;
SELECT 'every value as in t: ' || substr(got, 1, 300), ok FROM same;
SELECT 'the sample has all its rows', (SELECT count(*) FROM m) = 28;
SELECT 'each value equals its source exactly (IS, type too)',
  (SELECT count(*) FROM sample s JOIN m USING (key) WHERE m.value IS s.value AND typeof(m.value) = typeof(s.value)) = 28;

SELECT 'max int64', (SELECT value FROM m WHERE key = 'int_max') = 9223372036854775807 AND (SELECT typeof(value) FROM m WHERE key = 'int_max') = 'integer';
SELECT 'min int64', (SELECT value FROM m WHERE key = 'int_min') = -9223372036854775807 - 1 AND (SELECT typeof(value) FROM m WHERE key = 'int_min') = 'integer';
SELECT 'min int64 plus one', (SELECT value + 1 FROM m WHERE key = 'int_min') = -9223372036854775807;
SELECT '2^53 + 1 is kept as an integer', (SELECT value - 9007199254740992 FROM m WHERE key = 'int_2_53_plus_1') = 1;
SELECT '1.0 stays real', (SELECT typeof(value) FROM m WHERE key = 'real_one') = 'real';
SELECT '-0.0 keeps its sign', (SELECT atan2(value, -1) < 0 AND value = 0 AND typeof(value) = 'real' FROM m WHERE key = 'real_neg_zero');
SELECT '0.0 stays positive', (SELECT atan2(value, -1) > 0 AND typeof(value) = 'real' FROM m WHERE key = 'real_zero');
SELECT '1e308', (SELECT value FROM m WHERE key = 'real_max') = 1e308;
SELECT '-1e308', (SELECT value FROM m WHERE key = 'real_neg_max') = -1e308;
SELECT 'largest double', (SELECT value FROM m WHERE key = 'real_dbl_max') = 1.7976931348623157e308;
SELECT 'smallest denormal', (SELECT value FROM m WHERE key = 'real_denorm_min') = 4.9406564584124654e-324
  AND (SELECT value > 0 FROM m WHERE key = 'real_denorm_min');
SELECT '1/3 bit-exact', (SELECT value FROM m WHERE key = 'real_third') = 1.0 / 3;
SELECT '0.1 + 0.2 bit-exact (not 0.3)', (SELECT value FROM m WHERE key = 'real_sum') = 0.1 + 0.2
  AND (SELECT value FROM m WHERE key = 'real_sum') <> 0.3;
SELECT 'empty text is text, not NULL', (SELECT typeof(value) || ':' || length(value) FROM m WHERE key = 'text_empty') = 'text:0';
SELECT 'text with an embedded NUL keeps all its bytes',
  (SELECT typeof(value) || ':' || hex(value) || ':' || length(CAST(value AS BLOB)) FROM m WHERE key = 'text_nul') = 'text:6100620063:5';
SELECT 'text with an embedded NUL: length() stops at the NUL as in t',
  (SELECT length(value) FROM m WHERE key = 'text_nul') = 1 AND (SELECT length(value) FROM t WHERE key = 'text_nul') = 1;
SELECT 'UTF-8 text', (SELECT value FROM m WHERE key = 'text_utf8') = 'h' || char(233) || 'llo ' || char(10003)
  AND (SELECT length(value) FROM m WHERE key = 'text_utf8') = 7;
SELECT 'digits stay text', (SELECT typeof(value) FROM m WHERE key = 'text_digits') = 'text'
  AND NOT EXISTS (SELECT 1 FROM m WHERE value = 123);
SELECT 'empty blob is a blob of length 0',
  (SELECT typeof(value) || ':' || length(value) || ':' || hex(value) FROM m WHERE key = 'blob_empty') = 'blob:0:';
SELECT 'empty blob = x''''', (SELECT count(*) FROM m WHERE value = x'') = 1;
SELECT 'blob bytes', (SELECT hex(value) FROM m WHERE key = 'blob_bytes') = '00010203FEFF';
SELECT 'a blob with text bytes stays a blob', (SELECT typeof(value) FROM m WHERE key = 'blob_text_bytes') = 'blob'
  AND NOT EXISTS (SELECT 1 FROM m WHERE value = 'abc');
SELECT 'NULL value', (SELECT typeof(value) FROM m WHERE key = 'null') = 'null';
SELECT '100000 random bytes', (SELECT value FROM m WHERE key = 'blob_random') = (SELECT value FROM sample WHERE key = 'blob_random');
SELECT '300000 characters', (SELECT value FROM m WHERE key = 'text_long') = printf('%.*c', 300000, 'z');
SELECT 'values read through a view', (SELECT count(*) FROM v JOIN sample s USING (key) WHERE v.value IS s.value) = 28;

-- Values written by UPDATE keep their class too.
UPDATE m SET value = -0.0 WHERE key = 'int_one';
UPDATE t SET value = -0.0 WHERE key = 'int_one';
UPDATE m SET value = x'' WHERE key = 'int_zero';
UPDATE t SET value = x'' WHERE key = 'int_zero';
UPDATE m SET value = CAST(x'00' AS TEXT) WHERE key = 'int_neg';
UPDATE t SET value = CAST(x'00' AS TEXT) WHERE key = 'int_neg';
SELECT 'updated values keep their class: ' || substr(got, 1, 300), ok FROM same;
DELETE FROM m;
DELETE FROM t;

-- Keys: an integer or real key is stored as its text.
INSERT INTO m VALUES (1, 'int key'), (1.5, 'real key'), (-3, 'negative'), (2.0, 'real 2.0'), (1e20, 'big real'), (0.1, 'tenth');
INSERT INTO t VALUES (1, 'int key'), (1.5, 'real key'), (-3, 'negative'), (2.0, 'real 2.0'), (1e20, 'big real'), (0.1, 'tenth');
SELECT 'numeric keys as in t: ' || got, ok FROM same;
SELECT 'numeric keys are stored as text', (SELECT group_concat(typeof(key)) FROM m) = 'text,text,text,text,text,text';
SELECT 'their text is that of SQLite',
  (SELECT group_concat(key, '|') FROM (SELECT key FROM m ORDER BY key)) = '-3|0.1|1|1.0e+20|1.5|2.0';
SELECT 'WHERE key = 1 finds ''1''', (SELECT value FROM m WHERE key = 1) = 'int key';
SELECT 'WHERE key = ''1'' finds it too', (SELECT value FROM m WHERE key = '1') = 'int key';
SELECT 'WHERE key = 1.5', (SELECT value FROM m WHERE key = 1.5) = 'real key';
SELECT 'WHERE key = 2.0 finds ''2.0''', (SELECT value FROM m WHERE key = 2.0) = 'real 2.0';
SELECT 'WHERE key = 2 does not find ''2.0''', NOT EXISTS (SELECT 1 FROM m WHERE key = 2)
  AND NOT EXISTS (SELECT 1 FROM t WHERE key = 2);
SELECT 'WHERE key = -3', (SELECT value FROM m WHERE key = -3) = 'negative';
SELECT 'WHERE key = 1e20', (SELECT value FROM m WHERE key = 1e20) = 'big real';
SELECT 'WHERE key IN (1, 1.5, 7)', (SELECT group_concat(value) FROM (SELECT value FROM m WHERE key IN (1, 1.5, 7) ORDER BY key)) = 'int key,real key';
SELECT 'key IN as in t', (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key IN (-3, '0.1', 2) ORDER BY key))
  IS (SELECT group_concat(key) FROM (SELECT key FROM t WHERE key IN (-3, '0.1', 2) ORDER BY key));
SELECT 'key > 1 compares as text, as in t', (SELECT group_concat(key) FROM (SELECT key FROM m WHERE key > 1 ORDER BY key))
  IS (SELECT group_concat(key) FROM (SELECT key FROM t WHERE key > 1 ORDER BY key));
SELECT 'a bound-like expression key = 0 + 1', (SELECT value FROM m WHERE key = 0 + 1) IS (SELECT value FROM t WHERE key = 0 + 1);
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT INTO m VALUES ('1', 'text one');
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
INSERT INTO t VALUES ('1', 'text one');
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT INTO m VALUES (1.5, 'again');
UPDATE m SET key = 7 WHERE key = '-3';
UPDATE t SET key = 7 WHERE key = '-3';
UPDATE m SET key = 7.25 WHERE key = 0.1;
UPDATE t SET key = 7.25 WHERE key = 0.1;
SELECT 'keys set by UPDATE are text too: ' || got, ok FROM same;
SELECT 'typeof of an updated key', (SELECT typeof(key) FROM m WHERE key = 7) = 'text';
DELETE FROM m WHERE key = 1;
DELETE FROM t WHERE key = 1;
SELECT 'DELETE WHERE key = 1 removes ''1'': ' || got, ok FROM same;
DELETE FROM m;
DELETE FROM t;

-- Blob keys stay blobs and differ from text keys with the same bytes.
INSERT INTO m VALUES ('abc', 'text key'), (x'616263', 'blob key'), ('1', 'text one'), (x'31', 'blob one'), ('', 'empty text'), (x'', 'empty blob');
INSERT INTO t VALUES ('abc', 'text key'), (x'616263', 'blob key'), ('1', 'text one'), (x'31', 'blob one'), ('', 'empty text'), (x'', 'empty blob');
SELECT 'blob and text keys as in t: ' || got, ok FROM same;
SELECT 'a blob key and a text key with the same bytes are two rows', (SELECT count(*) FROM m) = 6;
SELECT 'blob keys stay blobs', (SELECT group_concat(value) FROM (SELECT value FROM m WHERE typeof(key) = 'blob' ORDER BY value)) = 'blob key,blob one,empty blob';
SELECT 'key = text finds only the text key', (SELECT group_concat(value) FROM m WHERE key = 'abc') = 'text key';
SELECT 'key = blob finds only the blob key', (SELECT group_concat(value) FROM m WHERE key = x'616263') = 'blob key';
SELECT 'key = 1 finds only the text key', (SELECT group_concat(value) FROM m WHERE key = 1) = 'text one';
SELECT 'key = x''31'' finds only the blob key', (SELECT group_concat(value) FROM m WHERE key = x'31') = 'blob one';
SELECT 'key = '''' and key = x'''' differ', (SELECT value FROM m WHERE key = '') = 'empty text' AND (SELECT value FROM m WHERE key = x'') = 'empty blob';
SELECT 'key IN (text, blob) finds both', (SELECT count(*) FROM m WHERE key IN ('abc', x'616263')) = 2;
SELECT 'text keys sort before blob keys, as in t',
  (SELECT group_concat(value, '|') FROM (SELECT value FROM m ORDER BY key)) IS (SELECT group_concat(value, '|') FROM (SELECT value FROM t ORDER BY key));
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: m.key
INSERT INTO m VALUES (x'616263', 'dup');
-- error(SQLITE_CONSTRAINT_PRIMARYKEY): UNIQUE constraint failed: t.key
INSERT INTO t VALUES (x'616263', 'dup');
DELETE FROM m WHERE key = x'616263';
DELETE FROM t WHERE key = x'616263';
SELECT 'deleting the blob key keeps the text key: ' || got, ok FROM same;
SELECT 'the text key is still there', (SELECT value FROM m WHERE key = 'abc') = 'text key' AND NOT EXISTS (SELECT 1 FROM m WHERE key = x'616263');
UPDATE m SET key = x'616263' WHERE key = 'abc';
UPDATE t SET key = x'616263' WHERE key = 'abc';
SELECT 'a key updated to a blob is a blob: ' || got, ok FROM same;

-- Text keys with embedded NULs, UTF-8 and case.
INSERT INTO m VALUES (CAST(x'610062' AS TEXT), 'a NUL b'), (CAST(x'610063' AS TEXT), 'a NUL c'), ('a', 'just a'), ('A', 'upper A'),
  ('h' || char(233), 'utf8');
INSERT INTO t VALUES (CAST(x'610062' AS TEXT), 'a NUL b'), (CAST(x'610063' AS TEXT), 'a NUL c'), ('a', 'just a'), ('A', 'upper A'),
  ('h' || char(233), 'utf8');
SELECT 'keys with NULs, UTF-8 and case as in t: ' || got, ok FROM same;
SELECT 'a key with an embedded NUL keeps its bytes', (SELECT hex(key) FROM m WHERE value = 'a NUL b') = '610062';
SELECT 'lookup of a key with an embedded NUL', (SELECT value FROM m WHERE key = CAST(x'610062' AS TEXT)) = 'a NUL b';
SELECT 'keys differing after the NUL are distinct', (SELECT value FROM m WHERE key = CAST(x'610063' AS TEXT)) = 'a NUL c';
SELECT 'the prefix before the NUL is another key', (SELECT value FROM m WHERE key = 'a') = 'just a';
SELECT 'keys are case-sensitive', (SELECT value FROM m WHERE key = 'A') = 'upper A';
SELECT 'UTF-8 key', (SELECT value FROM m WHERE key = 'h' || char(233)) = 'utf8' AND (SELECT hex(key) FROM m WHERE value = 'utf8') = '68C3A9';

-- Long keys: up to 65535 bytes.
INSERT INTO m VALUES (printf('%.*c', 65535, 'k'), 'longest key');
SELECT 'a 65535-byte key works', (SELECT value FROM m WHERE key = printf('%.*c', 65535, 'k')) = 'longest key'
  AND (SELECT length(key) FROM m WHERE value = 'longest key') = 65535;
SELECT 'a 65534-byte prefix is another key', NOT EXISTS (SELECT 1 FROM m WHERE key = printf('%.*c', 65534, 'k'));
-- error(SQLITE_TOOBIG):
INSERT INTO m VALUES (printf('%.*c', 65536, 'k'), 'too long');
-- error(SQLITE_TOOBIG):
INSERT INTO m VALUES (zeroblob(65536), 'too long blob');
-- error(SQLITE_TOOBIG):
UPDATE m SET key = printf('%.*c', 65536, 'k') WHERE key = 'a';
SELECT 'a too long key changed nothing', NOT EXISTS (SELECT 1 FROM m WHERE length(key) > 65535) AND (SELECT value FROM m WHERE key = 'a') = 'just a';
