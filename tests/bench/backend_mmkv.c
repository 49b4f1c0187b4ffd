/*
** backend_mmkv.c -- the store's own C API (src/mmkv.h): mmkv_get, mmkv_put,
** mmkv_del, mmkv_begin/commit, mmkv_scan, on a named shared-memory mapping.
*/
#include "bench.h"
#include "mmkv.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct bench_db {
    mmkv *s;
    void *buf; /* value buffer of mmkv_get, reused */
    size_t bufsz;
};

/* Prints the handle's error about what; returns -1. */
static int mk_fail(struct bench_db *d, int rc, const char *what)
{
    fprintf(stderr, "bench: mmkv %s: %s (%s)\n", what, mmkv_strerror(rc),
            d ? mmkv_errmsg(d->s) : "");
    return -1;
}

/* The mapping's name: "-c" for one part, "-c<parts>" for more. */
static void mk_name_parts(const bench_cfg *c, unsigned parts, char *out, size_t n)
{
    if (parts > 1)
        snprintf(out, n, "bench-%s-c%u", c->tag, parts);
    else
        snprintf(out, n, "bench-%s-c", c->tag);
}

static void mk_name(const bench_cfg *c, char *out, size_t n)
{
    mk_name_parts(c, 1, out, n);
}

static int mk_connect_parts(const bench_cfg *c, int mode, unsigned parts, struct bench_db **out)
{
    char name[96], *msg = NULL;
    struct bench_db *d = calloc(1, sizeof *d);
    *out = NULL;
    if (!d) return -1;
    mk_name_parts(c, parts, name, sizeof name);
    mmkv_options o = mmkv_default_options();
    o.name = name;
    o.size = mapping_bytes(c);
    o.mode = mode;
    o.timeout_ms = 10000;
    o.parts = parts;
    int rc = mmkv_open(&o, &d->s, &msg);
    if (rc) {
        fprintf(stderr, "bench: mmkv_open %s: %s\n", name, msg ? msg : mmkv_strerror(rc));
        free(msg);
        free(d);
        return -1;
    }
    *out = d;
    return 0;
}

static int mk_connect(const bench_cfg *c, int mode, struct bench_db **out)
{
    return mk_connect_parts(c, mode, 1, out);
}

static int mk_create(const bench_cfg *c, struct bench_db **out)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/sqlite-mmap.bench-%s-c", c->tag);
    cleanup_register(path);
    return mk_connect(c, MMKV_MODE_NEW, out);
}

static int mk_open(const bench_cfg *c, struct bench_db **out)
{
    return mk_connect(c, MMKV_MODE_OPEN, out);
}

static void mk_close(struct bench_db *d)
{
    mmkv_close(d->s);
    free(d->buf);
    free(d);
}

static void mk_destroy(const bench_cfg *c)
{
    char name[96];
    mk_name(c, name, sizeof name);
    mmkv_unlink(name);
}

static int mk_get(struct bench_db *d, const char *key, uint64_t *sink)
{
    mmkv_key k = {MMKV_TEXT, key, KEY_LEN};
    mmkv_value v;
    int rc = mmkv_get(d->s, &k, &v, &d->buf, &d->bufsz);
    if (rc == MMKV_OK) {
        *sink += v.n + (v.n ? ((const unsigned char *)v.p)[0] : 0);
        return 0;
    }
    return rc == MMKV_NOTFOUND ? 1 : mk_fail(d, rc, "get");
}

static int mk_put(struct bench_db *d, const char *key, const void *val, uint32_t vlen)
{
    mmkv_key k = {MMKV_TEXT, key, KEY_LEN};
    mmkv_value v = {MMKV_BLOB, 0, 0, val, vlen};
    int rc = mmkv_put(d->s, &k, &v, MMKV_PUT_REPLACE);
    return rc ? mk_fail(d, rc, "put") : 0;
}

static int mk_del(struct bench_db *d, const char *key)
{
    mmkv_key k = {MMKV_TEXT, key, KEY_LEN};
    int rc = mmkv_del(d->s, &k);
    return rc && rc != MMKV_NOTFOUND ? mk_fail(d, rc, "del") : 0;
}

static int mk_begin(struct bench_db *d)
{
    int rc = mmkv_begin(d->s);
    return rc ? mk_fail(d, rc, "begin") : 0;
}

static int mk_commit(struct bench_db *d)
{
    int rc = mmkv_commit(d->s);
    return rc ? mk_fail(d, rc, "commit") : 0;
}

/* Reads the value of key and replaces it, in a deferred transaction (what
** the table runs for an SQL UPDATE by key outside BEGIN). */
static int mk_update(struct bench_db *d, const char *key, const void *val, uint32_t vlen)
{
    mmkv_key k = {MMKV_TEXT, key, KEY_LEN};
    mmkv_value old, v = {MMKV_BLOB, 0, 0, val, vlen};
    int rc = mmkv_begin_deferred(d->s);
    if (rc) return mk_fail(d, rc, "begin");
    rc = mmkv_get(d->s, &k, &old, &d->buf, &d->bufsz);
    if (rc == MMKV_OK) rc = mmkv_put(d->s, &k, &v, MMKV_PUT_REPLACE);
    if (rc == MMKV_OK) return mk_commit(d);
    mk_fail(d, rc, "update");
    mmkv_rollback(d->s);
    return -1;
}

/* mmkv_scan callback: touches the key and value. */
static int mk_row(void *ctx, const mmkv_key *k, const mmkv_value *v)
{
    uint64_t *sink = ctx;
    sink[0] +=
        ((const unsigned char *)k->p)[0] + v->n + (v->n ? ((const unsigned char *)v->p)[0] : 0);
    sink[1]++;
    return 0;
}

static int64_t mk_scan(struct bench_db *d, uint64_t *sink)
{
    uint64_t acc[2] = {0, 0};
    int rc = mmkv_scan(d->s, mk_row, acc);
    *sink += acc[0];
    return rc ? mk_fail(d, rc, "scan") : (int64_t)acc[1];
}

static int mk_space(struct bench_db *d, uint64_t *used, uint64_t *entries)
{
    mmkv_stats st;
    int rc = mmkv_stat(d->s, &st);
    if (rc) return mk_fail(d, rc, "stat");
    *used = st.used;
    *entries = st.entries;
    return 0;
}

const backend be_mmkv_c = {"mmkv-c",   "the store's C API (mmkv_get/mmkv_put), this project",
                           1,          0,
                           NULL,       mk_create,
                           mk_open,    mk_close,
                           mk_destroy, mk_get,
                           mk_put,     mk_del,
                           mk_begin,   mk_commit,
                           mk_scan,    NULL,
                           mk_space, 0, mk_update};

/* --- mmkv-cP: the same on a mapping split into BENCH_PARTS parts --- */

static int mkp_create(const bench_cfg *c, struct bench_db **out)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/sqlite-mmap.bench-%s-c%d", c->tag, BENCH_PARTS);
    cleanup_register(path);
    return mk_connect_parts(c, MMKV_MODE_NEW, BENCH_PARTS, out);
}

static int mkp_open(const bench_cfg *c, struct bench_db **out)
{
    return mk_connect_parts(c, MMKV_MODE_OPEN, BENCH_PARTS, out);
}

static void mkp_destroy(const bench_cfg *c)
{
    char name[96];
    mk_name_parts(c, BENCH_PARTS, name, sizeof name);
    mmkv_unlink(name);
}

const backend be_mmkv_cp = {BENCH_PARTS_NAME("mmkv-c"),
                            "the store's C API, mapping in parts (parts=" BENCH_PARTS_STR ")",
                            1,
                            0,
                            NULL,
                            mkp_create,
                            mkp_open,
                            mk_close,
                            mkp_destroy,
                            mk_get,
                            mk_put,
                            mk_del,
                            mk_begin,
                            mk_commit,
                            mk_scan,
                            NULL,
                            mk_space, 1, mk_update};
