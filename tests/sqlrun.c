/*
** sqlrun.c -- runs the SQL-level test files (sql/NAME.sql) against the mmap
** extension.
**
** Usage: sqlrun FILE.sql...
**
** Each file runs in its own fresh in-memory connection into which the
** extension at MMAP_EXT_PATH is loaded.  The file is a list of statements,
** run one after the other, with these conventions:
**
**   - A statement that returns rows must return rows of exactly two columns,
**     (label, ok), and every ok must be the integer 1.  Anything else is a
**     failure, reported as FILE:LINE, the label and what came back.  Each
**     such row counts as one check.
**   - A statement that returns no rows must succeed.
**   - Comment lines just before a statement may hold directives:
**       -- error: WORDS
**           the statement must fail with an error whose message contains
**           WORDS (case-sensitive).  Several `-- error:` lines before one
**           statement all apply.  `-- error:` with no words accepts any
**           message.
**       -- error(SQLITE_CONSTRAINT_PRIMARYKEY): WORDS
**           as above, and the extended result code must be the one named.
**       -- plan: WORDS
**           the statement (an EXPLAIN QUERY PLAN) must succeed and the
**           detail column of its rows, joined by newlines, must contain
**           WORDS.  Several `-- plan:` lines all apply.
**     A statement with a directive counts as one check.
**   - Before a file is run these tokens are replaced everywhere in it:
**       $NAME, $NAME1 ... $NAME9  mapping names unique to this run and file
**                                 (sqlrun<pid>_<file>, sqlrun<pid>_<file>_<d>)
**       $LONGNAME                 a unique mapping name of exactly 64 chars
**       $DIR                      a fresh directory under /tmp (absolute)
**     After the file, the connection is closed, every such name is removed
**     with mmap_unlink() on a fresh connection, and $DIR is deleted.
**   - Before the extension is loaded the runner records what the bare
**     connection has: temp.sqlrun_base_functions(name, narg) holds
**     pragma_function_list and temp.sqlrun_base_modules(name) holds
**     pragma_module_list.  registration.sql compares against them.
**
** A file that makes no check at all fails.  At the end the runner prints
** "N passed, M failed" and exits 1 if anything failed.
*/
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <unistd.h>

#ifndef MMAP_EXT_PATH
#error "MMAP_EXT_PATH must be defined"
#endif

#define MAX_DIRECTIVES 16

/* What the comment lines before one statement asked for. */
typedef struct directives {
    int n_error;            /* number of -- error: lines */
    const char *error_code; /* name in error(NAME), or NULL */
    int error_code_len;
    const char *error_words[MAX_DIRECTIVES];
    int error_words_len[MAX_DIRECTIVES];
    int n_plan; /* number of -- plan: lines */
    const char *plan_words[MAX_DIRECTIVES];
    int plan_words_len[MAX_DIRECTIVES];
} directives;

/* The state of the run: counts, and the file being run. */
typedef struct runner {
    int passed;
    int failed;
    const char *path; /* file being run */
    int line;         /* line of the statement being run */
    int file_checks;  /* checks made in this file */
} runner;

/* Extended result codes a test may name in -- error(NAME). */
static const struct {
    const char *name;
    int code;
} result_codes[] = {
    {"SQLITE_ERROR", SQLITE_ERROR},
    {"SQLITE_BUSY", SQLITE_BUSY},
    {"SQLITE_READONLY", SQLITE_READONLY},
    {"SQLITE_CORRUPT", SQLITE_CORRUPT},
    {"SQLITE_FULL", SQLITE_FULL},
    {"SQLITE_CANTOPEN", SQLITE_CANTOPEN},
    {"SQLITE_TOOBIG", SQLITE_TOOBIG},
    {"SQLITE_CONSTRAINT", SQLITE_CONSTRAINT},
    {"SQLITE_MISMATCH", SQLITE_MISMATCH},
    {"SQLITE_MISUSE", SQLITE_MISUSE},
    {"SQLITE_RANGE", SQLITE_RANGE},
    {"SQLITE_CONSTRAINT_PRIMARYKEY", SQLITE_CONSTRAINT_PRIMARYKEY},
    {"SQLITE_CONSTRAINT_NOTNULL", SQLITE_CONSTRAINT_NOTNULL},
    {"SQLITE_CONSTRAINT_UNIQUE", SQLITE_CONSTRAINT_UNIQUE},
    {"SQLITE_CONSTRAINT_VTAB", SQLITE_CONSTRAINT_VTAB},
};

/* Records one failure at the current statement and prints it. */
static void fail(runner *r, const char *fmt, ...)
{
    va_list ap;
    fprintf(stdout, "%s:%d: FAIL: ", r->path, r->line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    r->failed++;
    r->file_checks++;
}

/* Records one passed check. */
static void pass(runner *r)
{
    r->passed++;
    r->file_checks++;
}

/* Returns the whole file at path as a malloc'd NUL-terminated string, or
** NULL.  */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

/* A growable string. */
typedef struct strbuf {
    char *p;
    size_t n, cap;
} strbuf;

/* Appends n bytes of s to b (aborts when out of memory). */
static void sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* The names and directory a file's tokens stand for. */
typedef struct tokens {
    char name[10][80]; /* [0] is $NAME, [d] is $NAMEd */
    char longname[80];
    char dir[64];
    int dir_made;
} tokens;

/* Fills t with names unique to this process and file number fileno. */
static void tokens_init(tokens *t, int fileno)
{
    int pid = (int)getpid();
    snprintf(t->name[0], sizeof t->name[0], "sqlrun%d_%d", pid, fileno);
    for (int d = 1; d < 10; d++)
        snprintf(t->name[d], sizeof t->name[d], "sqlrun%d_%d_%d", pid, fileno, d);
    int n = snprintf(t->longname, sizeof t->longname, "sqlrun%d_%d_long_", pid, fileno);
    while (n < 64)
        t->longname[n++] = 'x';
    t->longname[64] = 0;
    t->dir[0] = 0;
    t->dir_made = 0;
}

/* Returns a copy of text with the tokens replaced (caller frees), creating
** $DIR when the text uses it. */
static char *substitute(const char *text, tokens *t)
{
    strbuf b = {0};
    const char *p = text;
    sb_add(&b, "", 0);
    while (*p) {
        const char *q = strchr(p, '$');
        if (!q) {
            sb_add(&b, p, strlen(p));
            break;
        }
        sb_add(&b, p, (size_t)(q - p));
        if (strncmp(q, "$LONGNAME", 9) == 0) {
            sb_add(&b, t->longname, strlen(t->longname));
            p = q + 9;
        } else if (strncmp(q, "$NAME", 5) == 0) {
            int d = isdigit((unsigned char)q[5]) && q[5] != '0' ? q[5] - '0' : 0;
            sb_add(&b, t->name[d], strlen(t->name[d]));
            p = q + 5 + (d ? 1 : 0);
        } else if (strncmp(q, "$DIR", 4) == 0) {
            if (!t->dir_made) {
                snprintf(t->dir, sizeof t->dir, "/tmp/sqlrun%d_XXXXXX", (int)getpid());
                if (!mkdtemp(t->dir)) {
                    perror("mkdtemp");
                    exit(2);
                }
                t->dir_made = 1;
            }
            sb_add(&b, t->dir, strlen(t->dir));
            p = q + 4;
        } else {
            sb_add(&b, q, 1);
            p = q + 1;
        }
    }
    return b.p;
}

/* Removes every mapping a file's tokens named and its $DIR. */
static void cleanup(tokens *t)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    if (sqlite3_open(":memory:", &db) == SQLITE_OK &&
        sqlite3_enable_load_extension(db, 1) == SQLITE_OK &&
        sqlite3_load_extension(db, MMAP_EXT_PATH, NULL, &err) == SQLITE_OK) {
        for (int d = 0; d <= 10; d++) {
            const char *name = d < 10 ? t->name[d] : t->longname;
            sqlite3_stmt *st = NULL;
            if (sqlite3_prepare_v2(db, "SELECT mmap_unlink(?)", -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
                sqlite3_step(st);
            }
            sqlite3_finalize(st);
        }
    } else {
        fprintf(stderr, "sqlrun: cleanup could not load the extension: %s\n",
                err ? err : sqlite3_errmsg(db));
    }
    sqlite3_free(err);
    sqlite3_close(db);
    if (t->dir_made) {
        DIR *dir = opendir(t->dir);
        struct dirent *e;
        char path[600];
        while (dir && (e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", t->dir, e->d_name);
            unlink(path);
        }
        if (dir) closedir(dir);
        rmdir(t->dir);
    }
}

/* Returns the line number (1-based) of position p in text. */
static int line_of(const char *text, const char *p)
{
    int line = 1;
    for (const char *q = text; q < p; q++)
        if (*q == '\n') line++;
    return line;
}

/* Trims blanks at both ends of [*s, *s + *n). */
static void trim(const char **s, int *n)
{
    while (*n > 0 && isspace((unsigned char)**s))
        (*s)++, (*n)--;
    while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/* Reads one `-- ...` comment body [s, s+n) into d if it is a directive. */
static void parse_directive(directives *d, const char *s, int n)
{
    trim(&s, &n);
    if (n >= 5 && strncmp(s, "error", 5) == 0 && d->n_error < MAX_DIRECTIVES) {
        const char *colon = memchr(s, ':', (size_t)n);
        if (!colon) return;
        if (s[5] == '(') {
            const char *close = memchr(s, ')', (size_t)n);
            if (!close || close > colon) return;
            d->error_code = s + 6;
            d->error_code_len = (int)(close - s - 6);
        } else if (s + 5 != colon) {
            return;
        }
        const char *w = colon + 1;
        int wn = n - (int)(w - s);
        trim(&w, &wn);
        d->error_words[d->n_error] = w;
        d->error_words_len[d->n_error++] = wn;
    } else if (n >= 5 && strncmp(s, "plan:", 5) == 0 && d->n_plan < MAX_DIRECTIVES) {
        const char *w = s + 5;
        int wn = n - 5;
        trim(&w, &wn);
        d->plan_words[d->n_plan] = w;
        d->plan_words_len[d->n_plan++] = wn;
    }
}

/* Skips blanks and comments from p, collecting directives into d.  Returns
** where the next statement starts (or the end of the text). */
static const char *skip_comments(const char *p, directives *d)
{
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (p[0] == '-' && p[1] == '-') {
            const char *e = strchr(p, '\n');
            if (!e) e = p + strlen(p);
            parse_directive(d, p + 2, (int)(e - p - 2));
            p = e;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            p = e ? e + 2 : p + strlen(p);
        } else {
            return p;
        }
    }
}

/* Returns the end of the statement that starts at p: just past the ';' that
** completes it, or the end of the text. */
static const char *statement_end(const char *p)
{
    const char *semi = p;
    while ((semi = strchr(semi, ';')) != NULL) {
        size_t n = (size_t)(semi - p) + 1;
        char *s = malloc(n + 1);
        if (!s) abort();
        memcpy(s, p, n);
        s[n] = 0;
        int done = sqlite3_complete(s);
        free(s);
        if (done) return semi + 1;
        semi++;
    }
    return p + strlen(p);
}

/* Describes column i of the current row of st into b, SQL-literal style. */
static void describe_value(strbuf *b, sqlite3_stmt *st, int i)
{
    char tmp[64];
    const unsigned char *s;
    int n;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        sb_add(b, "NULL", 4);
        break;
    case SQLITE_INTEGER:
        snprintf(tmp, sizeof tmp, "%lld", (long long)sqlite3_column_int64(st, i));
        sb_add(b, tmp, strlen(tmp));
        break;
    case SQLITE_FLOAT:
        snprintf(tmp, sizeof tmp, "%.17g (real)", sqlite3_column_double(st, i));
        sb_add(b, tmp, strlen(tmp));
        break;
    case SQLITE_TEXT:
        s = sqlite3_column_text(st, i);
        n = sqlite3_column_bytes(st, i);
        sb_add(b, "'", 1);
        sb_add(b, (const char *)s, (size_t)(n > 300 ? 300 : n));
        sb_add(b, n > 300 ? "...'" : "'", n > 300 ? 4 : 1);
        break;
    default:
        s = sqlite3_column_blob(st, i);
        n = sqlite3_column_bytes(st, i);
        sb_add(b, "x'", 2);
        for (int k = 0; k < n && k < 64; k++) {
            snprintf(tmp, sizeof tmp, "%02x", s[k]);
            sb_add(b, tmp, 2);
        }
        sb_add(b, n > 64 ? "...'" : "'", n > 64 ? 4 : 1);
    }
}

/* Checks one row of an ordinary statement: two columns, the second the
** integer 1. */
static void check_row(runner *r, sqlite3_stmt *st)
{
    int ncol = sqlite3_column_count(st);
    if (ncol == 2 && sqlite3_column_type(st, 1) == SQLITE_INTEGER &&
        sqlite3_column_int64(st, 1) == 1) {
        pass(r);
        return;
    }
    strbuf b = {0};
    sb_add(&b, "", 0);
    for (int i = 0; i < ncol; i++) {
        if (i) sb_add(&b, " | ", 3);
        describe_value(&b, st, i);
    }
    if (ncol != 2)
        fail(r, "row of %d columns (want label, ok): %s", ncol, b.p);
    else
        fail(r, "%s", b.p);
    free(b.p);
}

/* Returns the extended code named by [s, s+n), or -1 if unknown. */
static int code_by_name(const char *s, int n)
{
    for (size_t i = 0; i < sizeof result_codes / sizeof result_codes[0]; i++)
        if ((int)strlen(result_codes[i].name) == n &&
            strncmp(result_codes[i].name, s, (size_t)n) == 0)
            return result_codes[i].code;
    return -1;
}

/* Returns non-zero if [w, w+n) occurs in s. */
static int contains(const char *s, const char *w, int n)
{
    size_t ls = strlen(s);
    if (n == 0) return 1;
    for (size_t i = 0; i + (size_t)n <= ls; i++)
        if (memcmp(s + i, w, (size_t)n) == 0) return 1;
    return 0;
}

/* Checks the outcome of a statement expected to fail. */
static void check_error(runner *r, sqlite3 *db, int rc, const directives *d)
{
    if (rc == SQLITE_DONE || rc == SQLITE_OK) {
        fail(r, "statement succeeded, expected an error containing '%.*s'", d->error_words_len[0],
             d->error_words[0]);
        return;
    }
    const char *msg = sqlite3_errmsg(db);
    int ext = sqlite3_extended_errcode(db);
    if (d->error_code) {
        int want = code_by_name(d->error_code, d->error_code_len);
        if (want < 0) {
            fail(r, "unknown result code name %.*s", d->error_code_len, d->error_code);
            return;
        }
        if (ext != want) {
            fail(r, "error code %d (%s), want %.*s (%d); message: %s", ext, sqlite3_errstr(ext),
                 d->error_code_len, d->error_code, want, msg);
            return;
        }
    }
    for (int i = 0; i < d->n_error; i++) {
        if (!contains(msg, d->error_words[i], d->error_words_len[i])) {
            fail(r, "error message '%s' lacks '%.*s'", msg, d->error_words_len[i],
                 d->error_words[i]);
            return;
        }
    }
    pass(r);
}

/* Runs one statement [sql, sql+n) with its directives. */
static void run_statement(runner *r, sqlite3 *db, const char *sql, int n, const directives *d)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(db, sql, n, &st, &tail);
    strbuf plan = {0};
    sb_add(&plan, "", 0);
    if (rc == SQLITE_OK && st == NULL) {
        if (d->n_error || d->n_plan) fail(r, "directive before an empty statement");
        return;
    }
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (d->n_error) continue;
            if (d->n_plan) {
                const unsigned char *detail =
                    sqlite3_column_count(st) >= 4 ? sqlite3_column_text(st, 3) : NULL;
                if (plan.n) sb_add(&plan, "\n", 1);
                if (detail) sb_add(&plan, (const char *)detail, strlen((const char *)detail));
                continue;
            }
            check_row(r, st);
        }
    }
    if (d->n_error) {
        check_error(r, db, rc, d);
    } else if (rc != SQLITE_DONE) {
        fail(r, "error %d (%s): %s", sqlite3_extended_errcode(db),
             sqlite3_errstr(sqlite3_extended_errcode(db)), sqlite3_errmsg(db));
    } else if (d->n_plan) {
        int ok = 1;
        for (int i = 0; i < d->n_plan && ok; i++) {
            if (!contains(plan.p, d->plan_words[i], d->plan_words_len[i])) {
                fail(r, "query plan lacks '%.*s'; plan:\n%s", d->plan_words_len[i],
                     d->plan_words[i], plan.p);
                ok = 0;
            }
        }
        if (ok) pass(r);
    }
    free(plan.p);
    sqlite3_finalize(st);
}

/* Opens a connection, records its bare functions and modules, and loads the
** extension.  Returns NULL on failure (after reporting it). */
static sqlite3 *open_connection(runner *r)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE TEMP TABLE sqlrun_base_functions AS"
                     "  SELECT name, narg FROM pragma_function_list;"
                     "CREATE TEMP TABLE sqlrun_base_modules AS"
                     "  SELECT name FROM pragma_module_list;",
                     NULL, NULL, &err) != SQLITE_OK ||
        sqlite3_enable_load_extension(db, 1) != SQLITE_OK ||
        sqlite3_load_extension(db, MMAP_EXT_PATH, NULL, &err) != SQLITE_OK) {
        fail(r, "cannot open a connection with %s: %s", MMAP_EXT_PATH,
             err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* Runs one test file (the fileno-th on the command line). */
static void run_file(runner *r, const char *path, int fileno)
{
    tokens t;
    r->path = path;
    r->line = 0;
    r->file_checks = 0;
    char *raw = read_file(path);
    if (!raw) {
        fail(r, "cannot read the file");
        return;
    }
    tokens_init(&t, fileno);
    char *text = substitute(raw, &t);
    free(raw);
    sqlite3 *db = open_connection(r);
    const char *p = text;
    while (db && *p) {
        directives d;
        memset(&d, 0, sizeof d);
        const char *start = skip_comments(p, &d);
        if (!*start) {
            if (d.n_error || d.n_plan) {
                r->line = line_of(text, start);
                fail(r, "directive at the end of the file");
            }
            break;
        }
        const char *end = statement_end(start);
        r->line = line_of(text, start);
        run_statement(r, db, start, (int)(end - start), &d);
        p = end;
    }
    sqlite3_close(db);
    if (db && r->file_checks == 0) {
        r->line = 0;
        fail(r, "the file made no check");
    }
    cleanup(&t);
    free(text);
}

int main(int argc, char **argv)
{
    runner r = {0};
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE.sql...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        run_file(&r, argv[i], i);
    printf("%d passed, %d failed\n", r.passed, r.failed);
    return r.failed ? 1 : 0;
}
