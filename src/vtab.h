/*
** vtab.h -- what the SQLite-facing files share: the module, the per-
** connection registry of open mmap tables, argument parsing and the one
** translation of store errors into SQLite codes and messages.
*/
#ifndef MMAP_VTAB_H
#define MMAP_VTAB_H

#include "sqlite3ext.h"
#include "mmkv.h"

/* One open mmap table of a connection. */
typedef struct mm_vtab mm_vtab;
struct mm_vtab {
    sqlite3_vtab base;
    sqlite3 *db;
    mmkv *store;
    char *schema;  /* "main", "temp", ... */
    char *table;   /* the table's name in SQL */
    int mode;      /* MMKV_MODE_* it was opened with */
    int want_txn;  /* xBegin was called; the lock is taken at the first use */
    size_t *marks; /* transaction marks by savepoint level */
    int nmarks;
    struct mm_registry *reg; /* the connection's registry */
    struct mm_cursor *spare; /* a closed cursor kept for reuse */
    mm_vtab *next;           /* in the connection's registry */
};

/* The tables a connection has open, for the SQL functions. */
struct mm_registry {
    mm_vtab *first;
};
typedef struct mm_registry mm_registry;

/* The module object registered as "mmap". */
extern const sqlite3_module mm_module;

/* Registers mmap_unlink, mmap_flush, mmap_info and mmap_check. */
int mm_register_functions(sqlite3 *db, mm_registry *reg);

/* Parses CREATE VIRTUAL TABLE arguments argv[3..argc-1] into *o.  Strings in
** *o are allocated with sqlite3_malloc and freed by mm_free_options.
** Returns SQLITE_OK, or SQLITE_ERROR with *err set (sqlite3_free it). */
int mm_parse_args(int argc, const char *const *argv, mmkv_options *o, char **err);
void mm_free_options(mmkv_options *o);

/* Translates a store result code into a SQLite code. */
int mm_sqlite_code(int rc);

/* Sets the table's error message to "mmap: <store message>" and returns the
** SQLite code for rc. */
int mm_store_error(mm_vtab *t, int rc);

#endif
