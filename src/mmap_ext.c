/*
** mmap_ext.c -- the entry point of the loadable extension.
**
**   sqlite> .load ./build/mmap
**   sqlite> CREATE VIRTUAL TABLE temp.cfg USING mmap(name='alpha', size='1M');
**
** sqlite3_mmap_init registers the virtual-table module `mmap` and the SQL
** functions mmap_unlink, mmap_flush, mmap_info and mmap_check on the
** connection that loads it.
*/
#include "vtab.h"
SQLITE_EXTENSION_INIT1

#include <stdlib.h>

#ifdef _WIN32
#define MMAP_EXPORT __declspec(dllexport)
#else
#define MMAP_EXPORT __attribute__((visibility("default")))
#endif

/* The oldest SQLite this extension is tested with. */
#define MMAP_MIN_SQLITE 3040000

/* Frees the connection's registry when the module goes away. */
static void registry_free(void *p)
{
    sqlite3_free(p);
}

MMAP_EXPORT int sqlite3_mmap_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi)
{
    SQLITE_EXTENSION_INIT2(pApi);
    if (sqlite3_libversion_number() < MMAP_MIN_SQLITE) {
        *pzErrMsg =
            sqlite3_mprintf("mmap: needs SQLite 3.40.0 or newer, this is %s", sqlite3_libversion());
        return SQLITE_ERROR;
    }
    mm_registry *reg = sqlite3_malloc(sizeof *reg);
    if (!reg) return SQLITE_NOMEM;
    reg->first = NULL;
    int rc = sqlite3_create_module_v2(db, "mmap", &mm_module, reg, registry_free);
    if (rc == SQLITE_OK) rc = mm_register_functions(db, reg);
    return rc;
}
