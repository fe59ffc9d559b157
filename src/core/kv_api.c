/*
 * kv_api.c -- the public key-value functions (F6) and their value objects:
 * sprig_value helpers and sprig_kv_key_list.
 *
 * Part of src/core, like api.c: each function checks its arguments (names,
 * the limits, value kinds, option combinations), clears its outputs, then
 * calls through the handle's operations table, so a local engine and a
 * remote client see the same, already validated, requests.  A NULL
 * namespace becomes "" (the default namespace) here.
 */
#include "core.h"

#include <math.h>

#define CHECK_ARG(cond, what)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            return sprig__err(SPRIG_EINVAL, "%s", what);                       \
        }                                                                      \
    } while (0)

/* ---- values ----------------------------------------------------------- */

sprig_value
sprig_value_of_bytes(sprig_bytes b)
{
    sprig_value v = {0};
    v.kind = SPRIG_VALUE_BYTES;
    v.bytes = b;
    return v;
}

sprig_value
sprig_value_of_i64(int64_t x)
{
    sprig_value v = {0};
    v.kind = SPRIG_VALUE_I64;
    v.num.i64 = x;
    return v;
}

sprig_value
sprig_value_of_u64(uint64_t x)
{
    sprig_value v = {0};
    v.kind = SPRIG_VALUE_U64;
    v.num.u64 = x;
    return v;
}

sprig_value
sprig_value_of_f64(double x)
{
    sprig_value v = {0};
    v.kind = SPRIG_VALUE_F64;
    v.num.f64 = x;
    return v;
}

void
sprig_value_clear(sprig_value *v)
{
    if (!v) {
        return;
    }
    sprig__free(v->owned_);
    memset(v, 0, sizeof *v);
}

int
sprig__value_set(sprig_value *out, sprig_value_kind kind, sprig_bytes payload,
                 uint64_t num_bits)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    if (kind != SPRIG_VALUE_BYTES) {
        memcpy(&out->num, &num_bits, sizeof num_bits);
        return SPRIG_OK;
    }
    if (payload.len == 0) {
        return SPRIG_OK;
    }
    out->owned_ = sprig__memdup(payload.data, payload.len);
    if (!out->owned_) {
        return sprig__err(SPRIG_ENOMEM, "out of memory copying a value");
    }
    out->bytes.data = out->owned_;
    out->bytes.len = payload.len;
    return SPRIG_OK;
}

/* ---- lists ------------------------------------------------------------ */

int
sprig__kv_list_push(sprig_kv_key_list *l, sprig_bytes key, const sprig_value *v,
                    uint64_t expire_at)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        sprig__kv_entry *p = sprig__realloc(l->items, cap * sizeof *p);
        if (!p) {
            return sprig__err(SPRIG_ENOMEM, "out of memory listing keys");
        }
        l->items = p;
        l->cap = cap;
    }
    size_t blen = v->kind == SPRIG_VALUE_BYTES ? v->bytes.len : 0;
    uint8_t *mem = sprig__malloc(key.len + 1 + blen);
    if (!mem) {
        return sprig__err(SPRIG_ENOMEM, "out of memory listing keys");
    }
    sprig__kv_entry *e = &l->items[l->n++];
    memcpy(mem, key.data, key.len);
    mem[key.len] = 0;
    e->mem = mem;
    e->key = (char *)mem;
    e->value = *v;
    e->value.owned_ = NULL;
    e->value.bytes = (sprig_bytes){NULL, 0};
    if (blen) {
        memcpy(mem + key.len + 1, v->bytes.data, blen);
        e->value.bytes = (sprig_bytes){mem + key.len + 1, blen};
    }
    e->expire_at = expire_at;
    return SPRIG_OK;
}

size_t
sprig_kv_key_list_count(const sprig_kv_key_list *l)
{
    return l ? l->n : 0;
}

const char *
sprig_kv_key_list_key(const sprig_kv_key_list *l, size_t i)
{
    return l && i < l->n ? l->items[i].key : NULL;
}

const sprig_value *
sprig_kv_key_list_value(const sprig_kv_key_list *l, size_t i)
{
    return l && i < l->n ? &l->items[i].value : NULL;
}

uint64_t
sprig_kv_key_list_expire_at(const sprig_kv_key_list *l, size_t i)
{
    return l && i < l->n ? l->items[i].expire_at : 0;
}

void
sprig_kv_key_list_free(sprig_kv_key_list *l)
{
    if (!l) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        sprig__free(l->items[i].mem);
    }
    sprig__free(l->items);
    sprig__free(l);
}

/* ---- argument checks -------------------------------------------------- */

/* Check a namespace and a name in it (a key, prefix or `after`). */
static int
check_name(const char *ns, const char *name, const char *what)
{
    size_t n = (ns ? strnlen(ns, SPRIG_KV_KEY_MAX + 1) : 0) +
               strnlen(name, SPRIG_KV_KEY_MAX + 1);
    if (n > SPRIG_KV_KEY_MAX) {
        return sprig__err(SPRIG_ETOOBIG,
                          "key-value namespace and %s are over %d bytes "
                          "together (LMDB keys hold 511 bytes, less the "
                          "expiry index's framing)",
                          what, SPRIG_KV_KEY_MAX);
    }
    return SPRIG_OK;
}

/* A placement that has no key-value store (yet) says so instead of
 * crashing on a NULL entry. */
static int
check_supported(sprig_db *db)
{
    if (!db->ops->kv_set || !db->ops->kv_get || !db->ops->kv_incr ||
        !db->ops->kv_delete || !db->ops->kv_list) {
        return sprig__err(SPRIG_EPROTO, "this database handle does not "
                                        "offer the key-value store");
    }
    return SPRIG_OK;
}

static int
check_key(sprig_db *db, const char *ns, const char *key)
{
    CHECK_ARG(db, "database handle is NULL");
    int rc = check_supported(db);
    if (rc) {
        return rc;
    }
    CHECK_ARG(key, "key is NULL");
    CHECK_ARG(*key, "key is empty");
    return check_name(ns, key, "key");
}

static int
check_value(const sprig_value *v, const char *what)
{
    if (!v) {
        return sprig__err(SPRIG_EINVAL, "%s is NULL", what);
    }
    switch (v->kind) {
    case SPRIG_VALUE_BYTES:
        if (v->bytes.len && !v->bytes.data) {
            return sprig__err(SPRIG_EINVAL, "%s has %zu bytes at NULL", what,
                              v->bytes.len);
        }
        if (v->bytes.len > SPRIG_KV_VALUE_MAX) {
            return sprig__err(SPRIG_ETOOBIG,
                              "%s has %zu bytes; the limit is %u", what,
                              v->bytes.len, (unsigned)SPRIG_KV_VALUE_MAX);
        }
        return SPRIG_OK;
    case SPRIG_VALUE_I64:
    case SPRIG_VALUE_U64: return SPRIG_OK;
    case SPRIG_VALUE_F64:
        if (isnan(v->num.f64)) {
            return sprig__err(SPRIG_EINVAL, "%s is NaN, which is not stored",
                              what);
        }
        return SPRIG_OK;
    case SPRIG_VALUE_NONE:
        return sprig__err(SPRIG_EINVAL, "%s is SPRIG_VALUE_NONE, no value",
                          what);
    }
    return sprig__err(SPRIG_EINVAL, "%s has unknown kind %d", what,
                      (int)v->kind);
}

static int
check_opts(const sprig_kv_set_opts *so, const sprig_value *previous)
{
    if (!so) {
        return SPRIG_OK;
    }
    if (so->check != SPRIG_KV_ANY && so->check != SPRIG_KV_ONLY_IF_VACANT &&
        so->check != SPRIG_KV_ONLY_IF_PRESENT) {
        return sprig__err(SPRIG_EINVAL, "unknown key-value check %d",
                          (int)so->check);
    }
    CHECK_ARG(!(so->expire_at_ms && so->expire_in_ms),
              "set at most one of expire_at_ms and expire_in_ms");
    CHECK_ARG(!so->return_previous || previous,
              "return_previous needs a `previous` value to fill");
    return SPRIG_OK;
}

/* An output that holds nothing (yet). */
static void
no_value(sprig_value *v)
{
    if (v) {
        memset(v, 0, sizeof *v);
        v->kind = SPRIG_VALUE_NONE;
    }
}

static const char *
ns_or_default(const char *ns)
{
    return ns ? ns : "";
}

/* ---- operations ------------------------------------------------------- */

int
sprig_kv_set(sprig_db *db, const char *ns, const char *key,
             const sprig_value *v, const sprig_kv_set_opts *so,
             sprig_kv_status *status, sprig_value *previous)
{
    static const sprig_kv_set_opts defaults;
    sprig_kv_status st_local;
    if (status) {
        *status = 0;
    }
    no_value(previous);
    int rc = check_key(db, ns, key);
    rc = rc ? rc : check_value(v, "value");
    rc = rc ? rc : check_opts(so, previous);
    if (rc) {
        return rc;
    }
    return db->ops->kv_set(db, ns_or_default(ns), key, v, so ? so : &defaults,
                           status ? status : &st_local, previous);
}

int
sprig_kv_get(sprig_db *db, const char *ns, const char *key, bool and_delete,
             sprig_value *out)
{
    no_value(out);
    int rc = check_key(db, ns, key);
    rc = rc ? rc : db->ops->kv_get(db, ns_or_default(ns), key, and_delete, out);
    if (rc < 0 && db) {
        sprig__err_in_db(rc, db->ops->name(db));
        sprig__errinfo_context(db->ops->name(db), NULL, NULL);
    }
    return rc;
}

static int
step(sprig_db *db, const char *ns, const char *key, const sprig_value *amount,
     bool decrement, bool saturating, sprig_value *out)
{
    no_value(out);
    int rc = check_key(db, ns, key);
    rc = rc ? rc : check_value(amount, "amount");
    if (rc) {
        return rc;
    }
    CHECK_ARG(amount->kind != SPRIG_VALUE_BYTES,
              "the amount of an increment must be a number, not bytes");
    if (amount->kind == SPRIG_VALUE_F64 && !isfinite(amount->num.f64)) {
        return sprig__err(SPRIG_EINVAL, "the amount %g is not finite",
                          amount->num.f64);
    }
    return db->ops->kv_incr(db, ns_or_default(ns), key, amount, decrement,
                            saturating, out);
}

int
sprig_kv_increment(sprig_db *db, const char *ns, const char *key,
                   const sprig_value *amount, bool saturating, sprig_value *out)
{
    return step(db, ns, key, amount, false, saturating, out);
}

int
sprig_kv_decrement(sprig_db *db, const char *ns, const char *key,
                   const sprig_value *amount, bool saturating, sprig_value *out)
{
    return step(db, ns, key, amount, true, saturating, out);
}

int
sprig_kv_delete(sprig_db *db, const char *ns, const char *key,
                sprig_kv_status *status)
{
    sprig_kv_status st_local;
    if (status) {
        *status = 0;
    }
    int rc = check_key(db, ns, key);
    return rc ? rc
              : db->ops->kv_delete(db, ns_or_default(ns), key,
                                   status ? status : &st_local);
}

int
sprig_kv_list_keys(sprig_db *db, const char *ns, const char *prefix,
                   const char *after, uint32_t limit, sprig_kv_key_list **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    CHECK_ARG(db, "database handle is NULL");
    int rc = check_supported(db);
    rc = rc ? rc : check_name(ns, prefix ? prefix : "", "prefix");
    rc = rc ? rc : (after ? check_name(ns, after, "`after` key") : 0);
    return rc ? rc
              : sprig__err_in_db(db->ops->kv_list(db, ns_or_default(ns),
                                                  prefix ? prefix : "", after,
                                                  limit, out),
                                 db->ops->name(db));
}
