/*
** read.c -- lookups and scans.
**
** A lookup first tries without the lock, reading between two loads of the
** header's seq; only if writers keep changing the mapping does it take the
** lock.  A scan always runs under the lock, so it sees one moment.
*/
#include "store_int.h"

#include <stdlib.h>

/* Copies a record's value into *v, its bytes into the caller's buffer. */
static int copy_value(struct mmkv *s, const struct rec *r, mmkv_value *v, void **buf, size_t *bufsz)
{
    *v = r->val;
    if (r->val.type != MMKV_TEXT && r->val.type != MMKV_BLOB) return MMKV_OK;
    if (*bufsz < (size_t)r->val.n + 1) {
        void *p = realloc(*buf, (size_t)r->val.n + 1);
        if (!p) return store_err(s, MMKV_NOMEM, "out of memory");
        *buf = p;
        *bufsz = (size_t)r->val.n + 1;
    }
    if (r->val.n) memcpy(*buf, r->val.p, r->val.n);
    ((char *)*buf)[r->val.n] = 0;
    v->p = *buf;
    return MMKV_OK;
}

/* Tells the processor that this is a spin-wait loop. */
static void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Looks k up without the lock: reads between two loads of seq and keeps the
** result only if seq was even and unchanged, so no writer was at work.
** Every offset is bounds-checked, so a torn read is harmless; it is thrown
** away.  Returns the lookup's result, or -1 when writers kept it from
** succeeding (the caller then takes the lock). */
static int get_optimistic(struct mmkv *s, const mmkv_key *k, mmkv_value *v, void **buf,
                          size_t *bufsz)
{
    struct mmkv_hdr *h = s->hdr;
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t seq = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);
        if (seq & 1) {
            spin_pause();
            continue;
        }
        struct rec r;
        uint64_t slot;
        int rc = index_find(s, k, key_hash(h->seed, k), &slot, &r);
        if (rc == MMKV_OK) rc = copy_value(s, &r, v, buf, bufsz);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&h->seq, __ATOMIC_RELAXED) == seq) return rc;
    }
    return -1;
}

int mmkv_get(mmkv *s, const mmkv_key *k, mmkv_value *v, void **buf, size_t *bufsz)
{
    int rc = store_check_sizes(s, k, NULL);
    if (rc == MMKV_TOOBIG) return MMKV_NOTFOUND; /* no such key can exist */
    if (rc) return rc;
    if (!s->locked && (rc = get_optimistic(s, k, v, buf, bufsz)) >= 0) return rc;
    rc = store_lock(s);
    if (rc) return rc;
    struct rec r;
    uint64_t slot;
    rc = index_find(s, k, key_hash(s->hdr->seed, k), &slot, &r);
    if (rc == MMKV_OK) rc = copy_value(s, &r, v, buf, bufsz);
    store_unlock(s);
    return rc;
}

int mmkv_scan(mmkv *s, mmkv_scan_fn fn, void *ctx)
{
    int rc = store_lock(s);
    if (rc) return rc;
    uint64_t *t = NULL, n = 0;
    rc = index_table(s, &t, &n);
    for (uint64_t i = 0; rc == MMKV_OK && i < n; i++) {
        struct rec r;
        if (!t[i]) continue;
        rc = rec_decode(s, (uint64_t)(uint32_t)t[i] * 8, &r);
        if (rc == MMKV_OK) rc = fn(ctx, &r.key, &r.val);
    }
    store_unlock(s);
    return rc;
}
