/*
** functions.c -- the SQL functions of the extension.
**
**   mmap_unlink(NAME)  removes the named mapping; 1 if it existed, else 0
**   mmap_flush(TABLE)  writes a file-backed mapping to its file; 1
**   mmap_info(TABLE)   JSON: name or file, entries, capacity, used,
**                      kv_bytes, slots, format, mode
**   mmap_check(TABLE)  'ok', or one line per problem found in the mapping
**
** TABLE is the name of an mmap table of this connection ('cfg' or
** 'temp.cfg').
*/
#include "vtab.h"
SQLITE_EXTENSION_INIT3

#include <stdlib.h>
#include <string.h>

/* Finds an open mmap table by "name" or "schema.name" in the registry. */
static mm_vtab *find_table(mm_registry *reg, const char *spec)
{
    const char *dot = strchr(spec, '.');
    for (mm_vtab *t = reg->first; t; t = t->next) {
        if (dot) {
            size_t n = (size_t)(dot - spec);
            if (strlen(t->schema) == n && sqlite3_strnicmp(t->schema, spec, (int)n) == 0 &&
                sqlite3_stricmp(t->table, dot + 1) == 0)
                return t;
        } else if (sqlite3_stricmp(t->table, spec) == 0) {
            return t;
        }
    }
    return NULL;
}

/* Makes SQLite connect the table (if its schema names one) by preparing a
** statement that reads it. */
static void touch_table(sqlite3 *db, const char *spec)
{
    const char *dot = strchr(spec, '.');
    char *sql = dot ? sqlite3_mprintf("SELECT 1 FROM \"%w\".\"%w\" WHERE 0", "", dot + 1)
                    : sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE 0", spec);
    if (dot) {
        sqlite3_free(sql);
        sql = sqlite3_mprintf("SELECT 1 FROM \"%.*w\".\"%w\" WHERE 0", (int)(dot - spec), spec,
                              dot + 1);
    }
    sqlite3_stmt *st = NULL;
    if (sql && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) sqlite3_finalize(st);
    sqlite3_free(sql);
}

/* Returns the table named by argument 0, or NULL with an error set. */
static mm_vtab *table_arg(sqlite3_context *ctx, sqlite3_value *arg)
{
    mm_registry *reg = sqlite3_user_data(ctx);
    const char *spec = (const char *)sqlite3_value_text(arg);
    if (!spec) {
        sqlite3_result_error(ctx, "mmap: the argument is the name of an mmap table", -1);
        return NULL;
    }
    mm_vtab *t = find_table(reg, spec);
    if (!t) {
        touch_table(sqlite3_context_db_handle(ctx), spec);
        t = find_table(reg, spec);
    }
    if (!t) {
        char *m = sqlite3_mprintf("mmap: no mmap table named %s in this connection", spec);
        sqlite3_result_error(ctx, m, -1);
        sqlite3_free(m);
    }
    return t;
}

/* Reports a store error from a function. */
static void function_error(sqlite3_context *ctx, mm_vtab *t, int rc)
{
    char *m = sqlite3_mprintf("mmap: %s", mmkv_errmsg(t->store));
    sqlite3_result_error(ctx, m, -1);
    sqlite3_result_error_code(ctx, mm_sqlite_code(rc));
    sqlite3_free(m);
}

static void fn_unlink(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *name = (const char *)sqlite3_value_text(argv[0]);
    int rc = mmkv_unlink(name);
    if (rc == MMKV_INVALID) {
        sqlite3_result_error(ctx,
                             "mmap: invalid name: a name is 1-64 characters of A-Z a-z 0-9 "
                             ". _ - and does not start with '.'",
                             -1);
        return;
    }
    if (rc == MMKV_IOERR) {
        sqlite3_result_error(ctx, "mmap: the mapping could not be removed", -1);
        return;
    }
    sqlite3_result_int(ctx, rc == MMKV_OK);
}

static void fn_flush(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    mm_vtab *t = table_arg(ctx, argv[0]);
    if (!t) return;
    int rc = mmkv_flush(t->store);
    if (rc)
        function_error(ctx, t, rc);
    else
        sqlite3_result_int(ctx, 1);
}

/* Appends s to str as a JSON string. */
static void json_string(sqlite3_str *str, const char *s)
{
    sqlite3_str_appendchar(str, 1, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            sqlite3_str_appendf(str, "\\%c", c);
        else if (c < 0x20)
            sqlite3_str_appendf(str, "\\u%04x", c);
        else
            sqlite3_str_appendchar(str, 1, (char)c);
    }
    sqlite3_str_appendchar(str, 1, '"');
}

static void fn_info(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    static const char *const modes[] = {"create", "open", "new", "readonly"};
    (void)argc;
    mm_vtab *t = table_arg(ctx, argv[0]);
    if (!t) return;
    mmkv_stats st;
    int rc = mmkv_stat(t->store, &st);
    if (rc) {
        function_error(ctx, t, rc);
        return;
    }
    int is_file;
    const char *where = mmkv_location(t->store, &is_file);
    sqlite3_str *s = sqlite3_str_new(sqlite3_context_db_handle(ctx));
    sqlite3_str_appendf(s, "{\"%s\":", is_file ? "file" : "name");
    json_string(s, where);
    sqlite3_str_appendf(s,
                        ",\"entries\":%llu,\"capacity\":%llu,\"used\":%llu,\"kv_bytes\":%llu,"
                        "\"slots\":%llu,\"format\":%u,\"parts\":%u,\"mode\":\"%s\"}",
                        (unsigned long long)st.entries, (unsigned long long)st.capacity,
                        (unsigned long long)st.used, (unsigned long long)st.kv_bytes,
                        (unsigned long long)st.slots, st.format, st.parts, modes[t->mode]);
    char *json = sqlite3_str_finish(s);
    if (!json) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text(ctx, json, -1, sqlite3_free);
}

static void fn_check(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    mm_vtab *t = table_arg(ctx, argv[0]);
    if (!t) return;
    char *report = NULL;
    int rc = mmkv_check(t->store, &report);
    if (rc) {
        function_error(ctx, t, rc);
        return;
    }
    sqlite3_result_text(ctx, report, -1, SQLITE_TRANSIENT);
    free(report);
}

int mm_register_functions(sqlite3 *db, mm_registry *reg)
{
    static const struct {
        const char *name;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
        int flags;
    } fns[] = {
        {"mmap_unlink", fn_unlink, SQLITE_DIRECTONLY},
        {"mmap_flush", fn_flush, SQLITE_DIRECTONLY},
        {"mmap_info", fn_info, 0},
        {"mmap_check", fn_check, 0},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        int rc = sqlite3_create_function(db, fns[i].name, 1, SQLITE_UTF8 | fns[i].flags, reg,
                                         fns[i].fn, NULL, NULL);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}
