/*
** test_diff.c -- differential SQL test of the `mmap` virtual table.
**
** A generator of random SQL produces INSERT (every conflict mode, REPLACE,
** multi-row, INSERT ... SELECT, thousands of rows from a recursive CTE, so
** that the mapping's index grows), UPDATE of keys and of values with
** expressions, DELETE by key, range, IN list and condition, SELECT with
** ORDER BY, LIMIT/OFFSET, aggregates and typeof, and BEGIN / COMMIT /
** ROLLBACK / SAVEPOINT / RELEASE / ROLLBACK TO, over keys and values of
** every storage class and their edge cases (empty text, embedded NUL, large
** blobs, -0.0, the int64 extremes, 1e308, numbers as keys).
**
** Every statement runs on two sides and their outcomes are compared:
**   side A ("mmap"):      temp.t, an `mmap` table (unique name, size 16M)
**   side B ("reference"): t, an ordinary
**                         (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID
** Each side is its own connection (one connection with both tables would
** not do: a statement under OR ROLLBACK ends the whole transaction of its
** connection, which would disturb the other half of the comparison).  Both
** sides also have an ordinary table o(k INTEGER PRIMARY KEY, v), so
** transactions that span an mmap table and an ordinary table are compared
** too.  Side A has a second connection to the same mapping, on which some
** SELECTs outside transactions run, and now and then detaches its table and
** attaches it again.  The result code (extended codes are on), every row,
** and every value's storage class and bytes must be equal (a REAL by its
** bits, so -0.0 differs from 0.0).
**
** The mmap table visits rows in hash order, an ordinary table in key order,
** so only statements whose outcome does not depend on that order are made:
** SELECTs order by key or aggregate over an ordered subquery; an UPDATE of
** several keys maps them with '~'||key out of the range it updates (and is
** never OR FAIL); a multi-row UPDATE OR FAIL uses no expression that can
** fail.  After every statement of a shrinking replay and every 16 of a run,
** and at the end of each seed, mmap_check('t') must say 'ok'.
**
** Usage: test_diff [-s FIRST_SEED] [-n SEEDS] [-c STATEMENTS] [-v] [-f SCRIPT]
**   default: seeds 1..50 with 1000 statements each (50,000 statements);
**   a long mode, e.g.: test_diff -s 1000 -n 2000 -c 1000 (2 million);
**   -v prints each statement; -f runs a script as printed on a failure
**   (one statement a line) instead, e.g. to check a fix.
** On a failure the seed, the statement and a minimal reproducing script
** (shrunk by deleting statements while the failure persists) are printed.
** At the end a line of figures (how many statements succeeded or failed,
** rows compared) and "N passed, M failed" (N statements whose outcomes
** agreed, M seeds that failed); the exit status is 1 if anything failed.
*/
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MMAP_EXT_PATH
#error "MMAP_EXT_PATH must be defined"
#endif

#define MAP_SIZE "16M"
#define CHECK_EVERY 16

/* Statements that start with READER run, on side A, on the second
** connection (when the first is not inside a transaction). */
#define READER "/*reader*/ "

/* A statement that, on side A, detaches the mmap table and attaches it
** again with mode='open' (when not inside a transaction); it returns one
** row on both sides. */
#define REOPEN "SELECT 'reopen'"

/* ------------------------------------------------------------------ */
/* Growable byte buffers                                                */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

/* Appends n bytes to b (aborts on out of memory); keeps b NUL-terminated. */
static void buf_add(buf *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void buf_puts(buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* Appends printf-formatted text to b. */
static void buf_printf(buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) abort();
    if ((size_t)n >= sizeof tmp) abort(); /* formats here are short */
    buf_add(b, tmp, (size_t)n);
}

/* Returns a malloc'ed copy of b's text. */
static char *buf_dup(const buf *b)
{
    char *p = malloc(b->n + 1);
    if (!p) abort();
    memcpy(p, b->p ? b->p : "", b->n + 1);
    return p;
}

/* ------------------------------------------------------------------ */
/* Random numbers (splitmix64: the same sequence on every platform)     */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnd(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Returns a number in [0, n). */
static int below(rng *r, int n)
{
    return (int)(rnd(r) % (uint64_t)n);
}

/* Returns 1 with probability pct percent. */
static int chance(rng *r, int pct)
{
    return below(r, 100) < pct;
}

/* Picks one string of a NULL-free array of n. */
#define PICK(r, a) ((a)[below((r), (int)(sizeof(a) / sizeof((a)[0])))])

/* ------------------------------------------------------------------ */
/* The generator: SQL literals and expressions                          */

/* Keys beyond 'kNN': edge cases of every storage class. */
static const char *const KEY_POOL[] = {"'a'",
                                       "'b'",
                                       "'c'",
                                       "'ab'",
                                       "'a_'",
                                       "'a__'",
                                       "'b_'",
                                       "'A'",
                                       "'B'",
                                       "'Z'",
                                       "''",
                                       "' '",
                                       "'a'||char(0)||'b'",
                                       "'a'||char(0)",
                                       "char(0)",
                                       "char(0)||'a'",
                                       "x''",
                                       "x'00'",
                                       "x'61'",
                                       "x'31'",
                                       "x'6100'",
                                       "zeroblob(2)",
                                       "1",
                                       "2",
                                       "'1'",
                                       "'2'",
                                       "1.5",
                                       "'1.5'",
                                       "-0.0",
                                       "0.0",
                                       "0",
                                       "'0'",
                                       "-1",
                                       "'-1'",
                                       "9223372036854775807",
                                       "-9223372036854775808",
                                       "1e308",
                                       "-1e308",
                                       "4.9e-324",
                                       "0.1",
                                       "'é'",
                                       "'日本'",
                                       "'~a'",
                                       "'~k01'",
                                       "'zz'",
                                       "'k'",
                                       "'K01'",
                                       "printf('%.*c', 300, 'k')",
                                       "printf('%.*c', 2000, 'q')",
                                       "'a b'",
                                       "'it''s'",
                                       "'%'"};

/* Values that are edge cases. */
static const char *const VALUE_POOL[] = {"NULL",
                                         "0",
                                         "1",
                                         "-1",
                                         "42",
                                         "9223372036854775807",
                                         "-9223372036854775808",
                                         "-0.0",
                                         "0.0",
                                         "1.5",
                                         "-2.25",
                                         "1e308",
                                         "-1e308",
                                         "4.9e-324",
                                         "2.2250738585072014e-308",
                                         "0.1",
                                         "''",
                                         "'x'",
                                         "'hello'",
                                         "'a'||char(0)||'b'",
                                         "char(0)",
                                         "'1'",
                                         "'1.5'",
                                         "' 12 '",
                                         "'é'",
                                         "x''",
                                         "x'00'",
                                         "x'deadbeef'",
                                         "'{\"a\":1}'",
                                         "'[1,2]'",
                                         "'abc'",
                                         "zeroblob(1)",
                                         "'9223372036854775808'"};

/* Appends a key literal: 'kNN' or one of the edge cases. */
static void put_key(rng *r, buf *b)
{
    if (chance(r, 45))
        buf_printf(b, "'k%02d'", below(r, 30));
    else
        buf_puts(b, PICK(r, KEY_POOL));
}

/* Appends a random double as an exact REAL literal. */
static void put_real(rng *r, buf *b)
{
    double d;
    if (chance(r, 50)) {
        uint64_t bits = rnd(r);
        memcpy(&d, &bits, 8);
        if (!isfinite(d)) d = 2.5;
    } else {
        d = (double)(below(r, 2000) - 1000) / 8.0;
    }
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.17g", d);
    buf_puts(b, tmp);
    if (!strpbrk(tmp, ".e")) buf_puts(b, ".0");
}

/* Appends a short TEXT literal of random characters (quotes doubled). */
static void put_text(rng *r, buf *b)
{
    static const char alphabet[] = "abcxyz019 _-'%.";
    int n = below(r, 12);
    buf_puts(b, "'");
    for (int i = 0; i < n; i++) {
        char c = alphabet[below(r, (int)sizeof alphabet - 1)];
        buf_add(b, &c, 1);
        if (c == '\'') buf_add(b, &c, 1);
    }
    buf_puts(b, "'");
    if (chance(r, 10)) buf_puts(b, "||char(0)||'z'");
}

/* Appends a BLOB literal of 0..24 random bytes. */
static void put_blob(rng *r, buf *b)
{
    int n = below(r, 25);
    buf_puts(b, "x'");
    for (int i = 0; i < n; i++)
        buf_printf(b, "%02x", below(r, 256));
    buf_puts(b, "'");
}

/* Appends a value of 1 KB .. 100 KB (deterministic: no randomblob). */
static void put_large(rng *r, buf *b)
{
    int n = 1000 + below(r, 99001);
    switch (below(r, 3)) {
    case 0:
        buf_printf(b, "zeroblob(%d)", n);
        break;
    case 1:
        buf_printf(b, "printf('%%.*c', %d, '%c')", n, 'a' + below(r, 26));
        break;
    default:
        buf_printf(b, "CAST(printf('%%.*c', %d, '%c') AS BLOB)", n, 'a' + below(r, 26));
        break;
    }
}

/* Appends a value literal of any storage class: up to `most` percent are
** 0..3000-byte texts and large values (100 for all kinds). */
static void put_value_of(rng *r, buf *b, int most)
{
    int k = below(r, most);
    if (k < 25)
        buf_puts(b, PICK(r, VALUE_POOL));
    else if (k < 40)
        buf_printf(b, "%d", below(r, 201) - 100);
    else if (k < 48)
        buf_printf(b, "%lld", (long long)rnd(r));
    else if (k < 60)
        put_real(r, b);
    else if (k < 78)
        put_text(r, b);
    else if (k < 90)
        put_blob(r, b);
    else if (k < 97)
        buf_printf(b, "printf('%%.*c', %d, 'm')", below(r, 3000));
    else
        put_large(r, b);
}

/* Appends a value literal of any kind and size. */
static void put_value(rng *r, buf *b)
{
    put_value_of(r, b, 100);
}

/* Appends a value literal of at most a few dozen bytes (for statements
** that may set thousands of rows). */
static void put_small_value(rng *r, buf *b)
{
    put_value_of(r, b, 90);
}

/* Value expressions for UPDATE; `fails` marks those that can raise an error. */
typedef struct vexpr {
    const char *sql;
    int fails;
} vexpr;

static const vexpr VEXPRS[] = {{"value+1", 0},
                               {"value-1", 0},
                               {"value*2", 0},
                               {"-value", 0},
                               {"value||'x'", 0},
                               {"'x'||value", 0},
                               {"value/2", 0},
                               {"value/2.0", 0},
                               {"CAST(value AS TEXT)", 0},
                               {"CAST(value AS BLOB)", 0},
                               {"CAST(value AS INTEGER)", 0},
                               {"CAST(value AS REAL)", 0},
                               {"NULL", 0},
                               {"length(value)", 0},
                               {"substr(value, 2)", 0},
                               {"coalesce(value, 0)+1", 0},
                               {"typeof(value)", 0},
                               {"hex(value)", 0},
                               {"key", 0},
                               {"key||value", 0},
                               {"abs(value)", 1},
                               {"json(value)", 1},
                               {"value*value", 0},
                               {"-0.0", 0}};

/* Key expressions for an UPDATE of one row's key. */
static const char *const KEXPRS[] = {
    "key||'_'", "'_'||key",       "upper(key)", "lower(key)", "key||char(0)", "CAST(key AS BLOB)",
    "key+1",    "substr(key, 2)", "NULL",       "key",        "'~'||key",     "trim(key, 'k')"};

/* Bounds of key ranges, in ascending order: all text at most 'z' (or
** numbers, compared as their text), so '~'||key leaves every range. */
static const char *const BOUNDS[] = {"''",   "'-'",   "'0'",  "'1'",  "1",   "2",   "'5'",
                                     "'A'",  "'a'",   "'a_'", "'b'",  "'c'", "'k'", "'k0'",
                                     "'k1'", "'k15'", "'k2'", "'k3'", "'z'"};

static const char *const MODES[] = {"",           "OR ABORT ",   "OR FAIL ",
                                    "OR IGNORE ", "OR REPLACE ", "OR ROLLBACK "};

/* Modes whose outcome does not depend on the order rows are visited. */
static const char *const ORDERLESS_MODES[] = {"", "OR ABORT ", "OR IGNORE ", "OR REPLACE ",
                                              "OR ROLLBACK "};

/* Appends a text range condition on key: lo <= key < hi, or similar. */
static void put_range(rng *r, buf *b)
{
    int n = (int)(sizeof BOUNDS / sizeof BOUNDS[0]), i = below(r, n), j = below(r, n);
    if (i > j && chance(r, 85)) {
        int k = i;
        i = j;
        j = k;
    }
    const char *lo = BOUNDS[i], *hi = BOUNDS[j];
    switch (below(r, 4)) {
    case 0:
        buf_printf(b, "key >= %s AND key < %s", lo, hi);
        break;
    case 1:
        buf_printf(b, "key BETWEEN %s AND %s", lo, hi);
        break;
    case 2:
        buf_printf(b, "key > %s AND key <= %s", lo, hi);
        break;
    default:
        buf_printf(b, "key < %s", hi);
        break;
    }
}

/* Appends key IN (k1, ...) with 1..5 keys. */
static void put_in_list(rng *r, buf *b)
{
    int n = 1 + below(r, 5);
    buf_puts(b, "key IN (");
    for (int i = 0; i < n; i++) {
        if (i) buf_puts(b, ", ");
        put_key(r, b);
    }
    buf_puts(b, ")");
}

/* Appends a WHERE condition (without the word WHERE). */
static void put_cond(rng *r, buf *b)
{
    static const char *const misc[] = {"typeof(value) = 'integer'",
                                       "typeof(value) = 'text'",
                                       "typeof(value) = 'blob'",
                                       "typeof(value) = 'real'",
                                       "value IS NULL",
                                       "value > 10",
                                       "value < 'm'",
                                       "length(key) > 3",
                                       "key LIKE 'k1%'",
                                       "key GLOB 'k[0-4]*'",
                                       "key > x'00'",
                                       "typeof(key) = 'blob'",
                                       "key IN (SELECT '~'||key FROM t)",
                                       "key IN (SELECT key||'_' FROM t)",
                                       "1"};
    int k = below(r, 10);
    if (k < 3) {
        buf_puts(b, "key = ");
        put_key(r, b);
        if (chance(r, 10)) buf_puts(b, " COLLATE NOCASE");
    } else if (k < 5) {
        put_in_list(r, b);
    } else if (k < 8) {
        put_range(r, b);
    } else {
        buf_puts(b, PICK(r, misc));
    }
}

/* Appends 2..6 rows of VALUES. */
static void put_rows(rng *r, buf *b)
{
    int n = 2 + below(r, 5);
    for (int i = 0; i < n; i++) {
        buf_puts(b, i ? ", (" : "(");
        if (chance(r, 3))
            buf_puts(b, "NULL");
        else
            put_key(r, b);
        buf_puts(b, ", ");
        put_value(r, b);
        buf_puts(b, ")");
    }
}

/* ------------------------------------------------------------------ */
/* The generator: statements                                            */

/* INSERT of one or several rows, in any conflict mode. */
static void gen_insert(rng *r, buf *b)
{
    int k = below(r, 10);
    if (k == 0) {
        buf_puts(b, "REPLACE INTO t VALUES (");
    } else if (k == 1) {
        buf_printf(b, "INSERT %sINTO t(value, key) VALUES (", PICK(r, MODES));
        put_value(r, b);
        buf_puts(b, ", ");
        put_key(r, b);
        buf_puts(b, ")");
        return;
    } else if (k == 2) {
        buf_printf(b, "INSERT %sINTO t(key) VALUES (", PICK(r, MODES));
        put_key(r, b);
        buf_puts(b, ")");
        return;
    } else if (k < 6) {
        buf_printf(b, "INSERT %sINTO t VALUES ", PICK(r, MODES));
        put_rows(r, b);
        return;
    } else {
        buf_printf(b, "INSERT %sINTO t VALUES (", PICK(r, MODES));
    }
    if (chance(r, 3))
        buf_puts(b, "NULL");
    else
        put_key(r, b);
    buf_puts(b, ", ");
    put_value(r, b);
    buf_puts(b, ")");
}

/* INSERT ... SELECT copying a key range to '~'||key, in key order. */
static void gen_insert_select(rng *r, buf *b)
{
    buf_printf(b, "INSERT %sINTO t SELECT '~'||key, ", PICK(r, MODES));
    buf_puts(b, chance(r, 50) ? "value" : VEXPRS[below(r, 18)].sql);
    buf_puts(b, " FROM t WHERE ");
    put_range(r, b);
    buf_puts(b, " ORDER BY key");
}

/* UPDATE of values (several rows: OR FAIL only with expressions that
** cannot fail). */
static void gen_update_value(rng *r, buf *b)
{
    const vexpr *e = &VEXPRS[below(r, (int)(sizeof VEXPRS / sizeof VEXPRS[0]))];
    const char *mode = e->fails ? PICK(r, ORDERLESS_MODES) : PICK(r, MODES);
    buf_printf(b, "UPDATE %st SET value = ", mode);
    if (chance(r, 20))
        put_small_value(r, b);
    else
        buf_puts(b, e->sql);
    buf_puts(b, " WHERE ");
    put_cond(r, b);
}

/* UPDATE of one row's key (and maybe its value), in any mode. */
static void gen_update_key(rng *r, buf *b)
{
    buf_printf(b, "UPDATE %st SET key = ", PICK(r, MODES));
    if (chance(r, 25))
        put_key(r, b);
    else
        buf_puts(b, PICK(r, KEXPRS));
    if (chance(r, 40)) {
        buf_puts(b, ", value = ");
        put_value(r, b);
    }
    buf_puts(b, " WHERE key = ");
    put_key(r, b);
}

/* UPDATE of the keys of a range to '~'||key (out of the range). */
static void gen_update_keys(rng *r, buf *b)
{
    buf_printf(b, "UPDATE %st SET key = '~'||key", PICK(r, ORDERLESS_MODES));
    if (chance(r, 30)) buf_puts(b, ", value = value||'~'");
    buf_puts(b, " WHERE ");
    put_range(r, b);
}

/* DELETE by key, range, IN list or condition (rarely of everything). */
static void gen_delete(rng *r, buf *b)
{
    buf_puts(b, "DELETE FROM t");
    if (chance(r, 2)) return;
    buf_puts(b, " WHERE ");
    put_cond(r, b);
}

/* A SELECT that orders by key or aggregates over an ordered subquery. */
static void gen_select(rng *r, buf *b)
{
    static const char *const aggs[] = {
        "sum(v), total(v), avg(v)",
        "min(v), max(v), count(v), count(*)",
        "group_concat(k, ','), group_concat(typeof(v))",
        "group_concat(hex(k)||':'||quote(v), ';')",
        "sum(length(v)), sum(length(k)), max(length(v))",
    };
    int k = below(r, 13);
    if (k < 3) {
        buf_puts(b, "SELECT key, typeof(key), value, typeof(value) FROM t WHERE ");
        put_cond(r, b);
        buf_puts(b, " ORDER BY key");
        int lim = below(r, 10);
        if (lim < 3)
            buf_printf(b, " LIMIT %d", below(r, 6));
        else if (lim < 5)
            buf_printf(b, " LIMIT %d OFFSET %d", below(r, 8) - 1, below(r, 5));
    } else if (k < 5) {
        buf_puts(b, "SELECT value, typeof(value), length(value) FROM t WHERE key = ");
        put_key(r, b);
    } else if (k < 7) {
        buf_printf(b, "SELECT %s FROM (SELECT key AS k, value AS v FROM t WHERE ", PICK(r, aggs));
        put_cond(r, b);
        buf_puts(b, " ORDER BY key)");
    } else if (k == 7) {
        buf_puts(b, "SELECT count(*), min(key), max(key), count(value) FROM t");
    } else if (k == 8) {
        buf_puts(b, "SELECT typeof(value), count(*) FROM t GROUP BY 1 ORDER BY 1");
    } else if (k == 9) {
        buf_puts(b, "SELECT a.key, b.value FROM t a JOIN t b ON b.key = a.key||'_' ORDER BY a.key");
    } else if (k == 10) {
        buf_puts(b, "SELECT key FROM t ORDER BY value, key LIMIT 7");
    } else if (k == 11) {
        buf_puts(b, "SELECT count(*) FROM t"); /* reads no column: the vtab's plan 6 */
    } else {
        buf_puts(b, "SELECT EXISTS(SELECT 1 FROM t WHERE key = ");
        put_key(r, b);
        buf_puts(b, ")");
    }
}

/* A statement on the ordinary table o, some of them reading or writing t
** too, so that transactions span both kinds of table. */
static void gen_other(rng *r, buf *b)
{
    switch (below(r, 6)) {
    case 0:
        buf_printf(b, "INSERT INTO o(v) VALUES (%d)", below(r, 100));
        break;
    case 1:
        buf_puts(b, "INSERT INTO o(v) SELECT count(*) FROM t");
        break;
    case 2:
        buf_printf(b, "INSERT %sINTO t SELECT 'o'||k, v FROM o WHERE k %% 5 = %d ORDER BY k",
                   PICK(r, MODES), below(r, 5));
        break;
    case 3:
        buf_puts(b, "UPDATE o SET v = v + 1 WHERE k % 2 = 0");
        break;
    case 4:
        buf_puts(b, "DELETE FROM o WHERE k IN (SELECT k FROM o ORDER BY k LIMIT 2)");
        break;
    default:
        buf_puts(b, "SELECT count(*), sum(v), max(k) FROM o");
        break;
    }
}

/* Thousands of rows at once ('g' followed by a number), so that the index
** of the mapping must grow; or their removal. */
static void gen_bulk(rng *r, buf *b)
{
    int from = below(r, 4000), n = 100 + below(r, 3000);
    if (chance(r, 30)) {
        buf_puts(b, "DELETE FROM t WHERE key >= 'g' AND key < 'h'");
        if (chance(r, 50)) buf_printf(b, " AND length(key) %% 2 = %d", below(r, 2));
        return;
    }
    buf_printf(b,
               "WITH RECURSIVE c(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM c WHERE i < %d) "
               "INSERT %sINTO t SELECT 'g'||i, i * %d FROM c",
               from, from + n, PICK(r, MODES), below(r, 5));
}

/* What the generator knows of the transaction state of side A. */
typedef struct txstate {
    int in_txn; /* not in autocommit mode */
    int nsave;  /* savepoints s0..s{nsave-1} believed open */
    int age;    /* statements since the transaction began */
} txstate;

/* BEGIN / COMMIT / ROLLBACK / SAVEPOINT / RELEASE / ROLLBACK TO.  Outside
** a transaction, now and then an end that fails (on both sides alike). */
static void gen_txn(rng *r, txstate *tx, buf *b)
{
    static const char *const begins[] = {"BEGIN", "BEGIN DEFERRED", "BEGIN IMMEDIATE"};
    static const char *const ends[] = {"COMMIT", "END", "ROLLBACK", "ROLLBACK"};
    int k = below(r, 10);
    if (!tx->in_txn) {
        if (k < 6)
            buf_puts(b, PICK(r, begins));
        else if (k < 9)
            buf_printf(b, "SAVEPOINT s%d", tx->nsave);
        else
            buf_puts(b, chance(r, 75) ? PICK(r, ends) : "RELEASE s0");
        return;
    }
    if (k < (tx->age > 40 ? 6 : 3))
        buf_puts(b, PICK(r, ends));
    else if (k < 6 || tx->nsave == 0)
        buf_printf(b, "SAVEPOINT s%d", tx->nsave);
    else if (k < 8)
        buf_printf(b, "RELEASE s%d", below(r, tx->nsave));
    else
        buf_printf(b, "ROLLBACK TO s%d", below(r, tx->nsave));
}

/* Generates one statement into b. */
static void gen_stmt(rng *r, txstate *tx, buf *b)
{
    int k = below(r, 100);
    b->n = 0;
    if (k < 20)
        gen_insert(r, b);
    else if (k < 23)
        gen_insert_select(r, b);
    else if (k < 31)
        gen_update_value(r, b);
    else if (k < 38)
        gen_update_key(r, b);
    else if (k < 41)
        gen_update_keys(r, b);
    else if (k < 49)
        gen_delete(r, b);
    else if (k < 75)
        gen_select(r, b);
    else if (k < 80)
        gen_other(r, b);
    else if (k < 81 && chance(r, 50))
        buf_puts(b, "SELECT key, typeof(key), value, typeof(value) FROM t ORDER BY key");
    else if (k < 81)
        gen_bulk(r, b);
    else if (tx->in_txn || k < 89)
        gen_txn(r, tx, b);
    else if (k < 90)
        buf_puts(b, REOPEN);
    else
        gen_select(r, b);
    if (!tx->in_txn && b->n > 7 && memcmp(b->p, "SELECT ", 7) == 0 && !strstr(b->p, " o") &&
        chance(r, 40)) {
        buf copy = {0};
        buf_puts(&copy, READER);
        buf_add(&copy, b->p, b->n);
        free(b->p);
        *b = copy;
    }
}

/* Updates the generator's idea of the transaction after stmt ran with rc. */
static void note_txn(txstate *tx, const char *stmt, int rc, int autocommit)
{
    int n;
    tx->age++;
    if (rc == SQLITE_OK) {
        if (sscanf(stmt, "SAVEPOINT s%d", &n) == 1) tx->nsave = n + 1;
        if (sscanf(stmt, "RELEASE s%d", &n) == 1) tx->nsave = n;
        if (sscanf(stmt, "ROLLBACK TO s%d", &n) == 1) tx->nsave = n + 1;
    }
    if (!tx->in_txn && !autocommit) tx->age = 0;
    tx->in_txn = !autocommit;
    if (autocommit) tx->nsave = 0;
}

/* ------------------------------------------------------------------ */
/* Running statements on both sides                                     */

/* One side's outcome of a statement: result code and encoded rows. */
typedef struct outcome {
    int rc;
    buf rows; /* per row 'R', per column type byte and bytes */
    int nrows;
} outcome;

/* A pair of connections: A with the mmap table, B with the ordinary one. */
typedef struct sides {
    sqlite3 *a, *b;
    sqlite3 *a2;   /* side A's reader: a second connection to the mapping */
    char name[64]; /* the mapping's name */
} sides;

/* Appends the value of column i to o's encoding. */
static void encode_column(sqlite3_stmt *st, int i, buf *rows)
{
    char type = (char)sqlite3_column_type(st, i);
    buf_add(rows, &type, 1);
    if (type == SQLITE_INTEGER) {
        int64_t v = sqlite3_column_int64(st, i);
        buf_add(rows, &v, 8);
    } else if (type == SQLITE_FLOAT) {
        double d = sqlite3_column_double(st, i);
        buf_add(rows, &d, 8);
    } else if (type == SQLITE_TEXT || type == SQLITE_BLOB) {
        const void *p = type == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, i)
                                            : sqlite3_column_blob(st, i);
        uint32_t n = (uint32_t)sqlite3_column_bytes(st, i);
        buf_add(rows, &n, 4);
        buf_add(rows, p, n);
    }
}

/* Runs sql on db, recording the result code and every row in *o. */
static void run_sql(sqlite3 *db, const char *sql, outcome *o)
{
    sqlite3_stmt *st = NULL;
    o->rows.n = 0;
    o->nrows = 0;
    o->rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (o->rc == SQLITE_OK && st) {
        while ((o->rc = sqlite3_step(st)) == SQLITE_ROW) {
            buf_add(&o->rows, "R", 1);
            for (int i = 0; i < sqlite3_column_count(st); i++)
                encode_column(st, i, &o->rows);
            o->nrows++;
        }
    }
    sqlite3_finalize(st);
    if (o->rc == SQLITE_DONE) o->rc = SQLITE_OK;
}

/* Returns non-zero if the two outcomes are the same. */
static int same_outcome(const outcome *x, const outcome *y)
{
    return x->rc == y->rc && x->rows.n == y->rows.n &&
           (x->rows.n == 0 || memcmp(x->rows.p, y->rows.p, x->rows.n) == 0);
}

/* Appends a readable form of n bytes (text or blob), cut after 40. */
static void show_bytes(buf *out, const unsigned char *p, uint32_t n, int is_text)
{
    uint32_t m = n > 40 ? 40 : n;
    buf_puts(out, is_text ? "'" : "x'");
    for (uint32_t i = 0; i < m; i++) {
        if (is_text && p[i] >= 32 && p[i] < 127 && p[i] != '\'')
            buf_add(out, &p[i], 1);
        else
            buf_printf(out, is_text ? "\\x%02x" : "%02x", p[i]);
    }
    buf_puts(out, "'");
    if (m < n) buf_printf(out, "...(%u bytes)", n);
}

/* Appends a readable form of o's rows (at most 20). */
static void show_rows(buf *out, const outcome *o)
{
    const unsigned char *p = (const unsigned char *)o->rows.p, *end = p + o->rows.n;
    int row = 0;
    while (p && p < end) {
        char t = (char)*p++;
        if (t == 'R') {
            if (++row > 20) {
                buf_printf(out, "\n--   ... %d rows in all", o->nrows);
                return;
            }
            buf_puts(out, "\n--   row:");
            continue;
        }
        buf_puts(out, " ");
        if (t == SQLITE_INTEGER || t == SQLITE_FLOAT) {
            int64_t i;
            double d;
            memcpy(&i, p, 8);
            memcpy(&d, p, 8);
            if (t == SQLITE_INTEGER)
                buf_printf(out, "%lld", (long long)i);
            else
                buf_printf(out, "%.17g%s", d, signbit(d) && d == 0 ? "(-0)" : "");
            p += 8;
        } else if (t == SQLITE_TEXT || t == SQLITE_BLOB) {
            uint32_t n;
            memcpy(&n, p, 4);
            show_bytes(out, p + 4, n, t == SQLITE_TEXT);
            p += 4 + n;
        } else {
            buf_puts(out, "NULL");
        }
    }
}

/* Appends one side's outcome as comment lines. */
static void show_outcome(buf *out, const char *side, const outcome *o)
{
    buf_printf(out, "-- %s: rc %d (%s), %d rows", side, o->rc, sqlite3_errstr(o->rc & 0xff),
               o->nrows);
    show_rows(out, o);
    buf_puts(out, "\n");
}

/* Runs setup SQL that must work; returns 0 or prints the error and -1. */
static int must_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK) return 0;
    fprintf(stderr, "test_diff: %s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    return -1;
}

/* Opens an in-memory connection with the extension loaded. */
static sqlite3 *open_db(void)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) return NULL;
    sqlite3_extended_result_codes(db, 1);
    sqlite3_enable_load_extension(db, 1);
    if (sqlite3_load_extension(db, MMAP_EXT_PATH, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "test_diff: cannot load %s: %s\n", MMAP_EXT_PATH, err ? err : "?");
        sqlite3_free(err);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

#define CREATE_O "CREATE TABLE o(k INTEGER PRIMARY KEY, v)"
#define CREATE_REF "CREATE TABLE t(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID"

static int g_parts = 1; /* -p: parts of the mappings made (1: format 2) */

/* Creates temp.t over side A's mapping on db (mode 'create' or 'open'). */
static int attach_mapping(const sides *s, sqlite3 *db, const char *mode)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "CREATE VIRTUAL TABLE temp.t USING mmap(name='%s', size='%s', mode='%s', parts=%d)",
             s->name, MAP_SIZE, mode, g_parts);
    return must_exec(db, sql);
}

/* Opens both sides with empty tables and a fresh mapping.  Returns 0 or -1. */
static int sides_open(sides *s)
{
    static int counter;
    snprintf(s->name, sizeof s->name, "diff%d_%d", (int)getpid(), counter++);
    s->a = open_db();
    s->a2 = open_db();
    s->b = open_db();
    if (!s->a || !s->a2 || !s->b) return -1;
    if (attach_mapping(s, s->a, "new") || must_exec(s->a, CREATE_O)) return -1;
    if (attach_mapping(s, s->a2, "open")) return -1;
    if (must_exec(s->b, CREATE_REF) || must_exec(s->b, CREATE_O)) return -1;
    return 0;
}

/* Detaches side A's table and attaches it again.  Returns 0 or -1. */
static int reopen_table(sides *s)
{
    if (must_exec(s->a, "DROP TABLE temp.t")) return -1;
    return attach_mapping(s, s->a, "open");
}

/* Closes both sides and removes the mapping. */
static void sides_close(sides *s)
{
    char sql[128];
    if (s->a) {
        snprintf(sql, sizeof sql, "SELECT mmap_unlink('%s')", s->name);
        sqlite3_exec(s->a, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_exec(s->a, "DROP TABLE temp.t", NULL, NULL, NULL);
        sqlite3_exec(s->a, sql, NULL, NULL, NULL);
    }
    sqlite3_close(s->a);
    sqlite3_close(s->a2);
    sqlite3_close(s->b);
    s->a = s->a2 = s->b = NULL;
}

/* Runs mmap_check('t') on side A.  Returns 0 if it says 'ok', else -1 with
** the report in *report (malloc'ed). */
static int check_mapping(sides *s, char **report)
{
    sqlite3_stmt *st = NULL;
    int ok = -1;
    *report = NULL;
    if (sqlite3_prepare_v2(s->a, "SELECT mmap_check('t')", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        ok = t && strcmp(t, "ok") == 0 ? 0 : -1;
        if (ok) *report = strdup(t ? t : "(null)");
    } else {
        *report = strdup(sqlite3_errmsg(s->a));
    }
    sqlite3_finalize(st);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Scripts, replay and shrinking                                        */

typedef struct script {
    char **v;
    size_t n, cap;
} script;

static void script_add(script *s, char *stmt)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) abort();
    }
    s->v[s->n++] = stmt;
}

static void script_free(script *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* What went wrong at a statement: the two outcomes, or a check report. */
typedef struct failure {
    outcome a, b;
    char *check; /* mmap_check's report, when that is the failure */
} failure;

/* Runs statement i on both sides and, if check_it, mmap_check after it.
** Returns 0 if all agreed, -1 on a failure (described in *f). */
static int step_both(sides *s, const char *stmt, int check_it, failure *f)
{
    sqlite3 *a = s->a;
    int idle = sqlite3_get_autocommit(s->a);
    if (idle && strncmp(stmt, READER, strlen(READER)) == 0) a = s->a2;
    if (idle && strcmp(stmt, REOPEN) == 0 && reopen_table(s)) {
        f->check = strdup("the table could not be attached again (see above)");
        return -1;
    }
    run_sql(a, stmt, &f->a);
    run_sql(s->b, stmt, &f->b);
    if (!same_outcome(&f->a, &f->b)) return -1;
    if (check_it && check_mapping(s, &f->check)) return -1;
    return 0;
}

/* Replays the first n statements on fresh sides, checking after each.
** Returns the index of the first failing statement, or -1 if none. */
static long replay(char **v, size_t n, failure *f)
{
    sides s = {0};
    long bad = -1;
    if (sides_open(&s) == 0) {
        for (size_t i = 0; i < n && bad < 0; i++)
            if (step_both(&s, v[i], 1, f)) bad = (long)i;
    }
    sides_close(&s);
    return bad;
}

/* Makes the script the n statements of trial (a subsequence of it),
** freeing those left out. */
static void keep_only(script *sc, char **trial, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < sc->n; i++) {
        if (j < n && sc->v[i] == trial[j])
            sc->v[j++] = sc->v[i];
        else
            free(sc->v[i]);
    }
    sc->n = n;
}

/* Shrinks the script to a short prefix-free sequence that still fails:
** drops chunks of statements (halving the chunk size down to one) while
** the replay still fails, always ending at the first failing statement. */
static void shrink(script *sc, failure *f)
{
    long bad = replay(sc->v, sc->n, f);
    if (bad < 0) return; /* not reproducible on replay */
    keep_only(sc, sc->v, (size_t)bad + 1);
    char **trial = malloc(sc->n * sizeof *trial);
    if (!trial) abort();
    for (size_t chunk = sc->n / 2 ? sc->n / 2 : 1;; chunk /= 2) {
        int progress = 1;
        while (progress) {
            progress = 0;
            for (size_t at = 0; at + 1 < sc->n;) {
                size_t len = at + chunk < sc->n - 1 ? chunk : sc->n - 1 - at, m = 0;
                for (size_t i = 0; i < sc->n; i++)
                    if (i < at || i >= at + len) trial[m++] = sc->v[i];
                long b2 = replay(trial, m, f);
                if (b2 >= 0) {
                    keep_only(sc, trial, (size_t)b2 + 1);
                    progress = 1;
                } else {
                    at += len;
                }
            }
            if (chunk > 1) break;
        }
        if (chunk == 1) break;
    }
    free(trial);
    replay(sc->v, sc->n, f); /* leave *f describing the final script */
}

/* Prints the seed, the failure and the reproducing script. */
static void print_repro(uint64_t seed, size_t at, size_t total, script *sc, failure *f)
{
    buf out = {0};
    buf_printf(&out, "\n-- test_diff: seed %llu failed at statement %zu of %zu.\n",
               (unsigned long long)seed, at + 1, total);
    buf_printf(&out, "-- Minimal script (%zu statements). Run it in sqlite3 twice:\n", sc->n);
    buf_printf(&out, "--   mmap side:      .load %s\n", MMAP_EXT_PATH);
    buf_printf(&out,
               "--                   CREATE VIRTUAL TABLE temp.t USING mmap(name='repro', "
               "size='%s', parts=%d);\n",
               MAP_SIZE, g_parts);
    buf_printf(&out, "--   reference side: %s;\n", CREATE_REF);
    buf_printf(&out, "--   both sides:     %s;\n", CREATE_O);
    buf_printf(&out,
               "--   On the mmap side, statements marked %s run on a second connection\n"
               "--   with the same table, and %s means: DROP TABLE temp.t and create it\n"
               "--   again with mode='open' (both only outside a transaction).\n",
               READER, REOPEN);
    for (size_t i = 0; i < sc->n; i++) {
        buf_puts(&out, sc->v[i]);
        buf_puts(&out, ";\n");
    }
    if (f->check) {
        buf_puts(&out, "-- then SELECT mmap_check('t') on the mmap side says: ");
        buf_puts(&out, f->check);
        buf_puts(&out, "\n");
    } else {
        show_outcome(&out, "mmap     ", &f->a);
        show_outcome(&out, "reference", &f->b);
    }
    fputs(out.p, stdout);
    fflush(stdout);
    free(out.p);
}

/* ------------------------------------------------------------------ */
/* Runs                                                                 */

static void failure_reset(failure *f)
{
    free(f->check);
    f->check = NULL;
}

/* Counts over a run, for the summary. */
typedef struct tally {
    long passed;       /* statements whose outcomes agreed */
    long ok, conflict; /* of those: succeeded, failed on a constraint */
    long other;        /* failed otherwise (syntax errors are rare by design) */
    long rows;         /* result rows compared */
    long most;         /* most entries seen in the table */
} tally;

/* Adds an agreed outcome to the tally. */
static void count_outcome(tally *t, const outcome *o)
{
    t->passed++;
    t->rows += o->nrows;
    if (o->rc == SQLITE_OK)
        t->ok++;
    else if ((o->rc & 0xff) == SQLITE_CONSTRAINT)
        t->conflict++;
    else
        t->other++;
}

/* Notes the number of entries in side B's table. */
static void count_entries(tally *t, sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > t->most)
        t->most = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
}

/* Runs one seed of count statements, adding to *t; returns 0, or -1 after
** printing a reproduction. */
static int run_seed(uint64_t seed, size_t count, tally *t, int verbose)
{
    rng r = {seed * 0x2545f4914f6cdd1dull + 1};
    txstate tx = {0};
    sides s = {0};
    script sc = {0};
    failure f = {0};
    buf stmt = {0};
    long bad = -1;
    if (sides_open(&s) != 0) {
        sides_close(&s);
        return -1;
    }
    for (size_t i = 0; i < count && bad < 0; i++) {
        gen_stmt(&r, &tx, &stmt);
        script_add(&sc, buf_dup(&stmt));
        if (verbose) printf("%s;\n", stmt.p);
        int check_it = (i + 1) % CHECK_EVERY == 0 || i + 1 == count;
        if (step_both(&s, stmt.p, check_it, &f)) {
            bad = (long)i;
        } else {
            count_outcome(t, &f.a);
            if (check_it) count_entries(t, s.b);
            note_txn(&tx, stmt.p, f.a.rc, sqlite3_get_autocommit(s.a));
        }
    }
    sides_close(&s);
    if (bad >= 0) {
        failure_reset(&f);
        size_t total = sc.n;
        shrink(&sc, &f);
        print_repro(seed, (size_t)bad, total, &sc, &f);
    }
    failure_reset(&f);
    free(f.a.rows.p);
    free(f.b.rows.p);
    free(stmt.p);
    script_free(&sc);
    return bad >= 0 ? -1 : 0;
}

/* Reads a script such as print_repro writes: one statement a line, ending
** in ';'; lines starting with "--" and empty lines are skipped.  Returns 0
** or -1. */
static int read_script(const char *path, script *sc)
{
    FILE *f = fopen(path, "r");
    char line[1 << 16];
    if (!f) {
        fprintf(stderr, "test_diff: cannot read %s\n", path);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        while (n && (line[n - 1] == ';' || line[n - 1] == ' '))
            n--;
        if (n == 0 || strncmp(line, "--", 2) == 0) continue;
        buf b = {0};
        buf_add(&b, line, n);
        script_add(sc, b.p);
    }
    fclose(f);
    return 0;
}

/* Runs a script file on fresh sides; prints a shrunk reproduction if it
** fails.  Returns 0 if it passed. */
static int run_file(const char *path)
{
    script sc = {0};
    failure f = {0};
    if (read_script(path, &sc)) return -1;
    long bad = replay(sc.v, sc.n, &f);
    printf("%s: %zu statements, %s\n", path, sc.n, bad < 0 ? "no failure" : "a failure");
    if (bad >= 0) {
        size_t total = sc.n;
        failure_reset(&f);
        shrink(&sc, &f);
        print_repro(0, (size_t)bad, total, &sc, &f);
    }
    failure_reset(&f);
    free(f.a.rows.p);
    free(f.b.rows.p);
    script_free(&sc);
    return bad < 0 ? 0 : -1;
}

/* What the command line asks for. */
typedef struct options {
    uint64_t first;   /* first seed */
    long seeds;       /* number of seeds */
    long count;       /* statements per seed */
    int verbose;      /* print each statement */
    const char *file; /* replay this script instead */
} options;

/* Parses the command line; returns 0 or -1 (usage printed). */
static int parse_args(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            o->verbose = 1;
        } else if (i + 1 < argc && strcmp(argv[i], "-s") == 0) {
            o->first = strtoull(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(argv[i], "-n") == 0) {
            o->seeds = strtol(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
            o->count = strtol(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(argv[i], "-p") == 0) {
            g_parts = atoi(argv[++i]);
        } else if (i + 1 < argc && strcmp(argv[i], "-f") == 0) {
            o->file = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: %s [-s FIRST_SEED] [-n SEEDS] [-c STATEMENTS] [-p PARTS] [-v] "
                    "[-f SCRIPT]\n",
                    argv[0]);
            return -1;
        }
    }
    return o->seeds > 0 && o->count > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    options o = {1, 50, 1000, 0, NULL};
    long failed = 0;
    tally t = {0};
    if (parse_args(argc, argv, &o)) return 2;
    if (o.file) return run_file(o.file) ? 1 : 0;
    for (long i = 0; i < o.seeds; i++)
        if (run_seed(o.first + (uint64_t)i, (size_t)o.count, &t, o.verbose)) failed++;
    printf("seeds %llu..%llu: %ld succeeded, %ld failed on a constraint, %ld other errors; "
           "%ld rows compared; at most %ld entries\n",
           (unsigned long long)o.first,
           (unsigned long long)o.first + (unsigned long long)o.seeds - 1, t.ok, t.conflict, t.other,
           t.rows, t.most);
    printf("%ld passed, %ld failed\n", t.passed, failed);
    return failed ? 1 : 0;
}
