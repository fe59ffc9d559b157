/*
 * cmd.c -- the codec of write commands (cmd.h): encode to the versioned
 * binary form, decode with every field validated, and clear.  Part of
 * src/core, so the engine, the server and the cluster share it; applying a
 * command is the engine's business (src/local/cmd_apply.c).
 *
 * A decoded command owns one arena (`mem_`) holding NUL-terminated copies
 * of its strings and bytes -- every string's length prefix is at least one
 * byte, so the arena never needs more than the input's size -- plus an
 * array of ops or sweep items (`ops_mem_`).
 */
#include "cmd.h"

/* ---- encoding ---------------------------------------------------------- */

static int
put_u16(sprig_buf *b, size_t v)
{
    uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return sprig_buf_append(b, p, 2);
}

/* [len: 1, 2 or 4 bytes][bytes] */
static int
put_str(sprig_buf *b, const void *p, size_t n, int width)
{
    int rc = width == 1   ? sprig__buf_put_u8(b, (uint8_t)n)
             : width == 2 ? put_u16(b, n)
                          : sprig__buf_put_u32(b, (uint32_t)n);
    return rc ? rc : n ? sprig_buf_append(b, p, n) : 0;
}

static bool
op_has_contents(sprig__op_kind k)
{
    return k == SPRIG__OP_INSERT || k == SPRIG__OP_UPDATE ||
           k == SPRIG__OP_OVERWRITE;
}

static int
encode_op(const sprig__op *op, sprig_buf *b)
{
    size_t cl = strlen(op->collection);
    if (cl > SPRIG_NAME_MAX || op->id.len > SPRIG_ID_MAX ||
        op->contents.len > SPRIG_CONTENTS_MAX) {
        return sprig__err(SPRIG_EINVAL, "an operation over the limits "
                                        "cannot be encoded");
    }
    uint8_t flags = (op->has_id ? 1 : 0) | (op->has_expected ? 2 : 0);
    int rc = sprig__buf_put_u8(b, (uint8_t)op->kind);
    rc = rc ? rc : sprig__buf_put_u8(b, flags);
    rc = rc ? rc : put_str(b, op->collection, cl, 1);
    if (rc == 0 && op->has_id) {
        rc = put_str(b, op->id.data, op->id.len, 2);
    }
    if (rc == 0 && op_has_contents(op->kind)) {
        rc = put_str(b, op->contents.data, op->contents.len, 4);
    }
    if (rc == 0 && op->has_expected) {
        rc = sprig__buf_put_u64(b, op->expected_rev);
        rc = rc ? rc : sprig_buf_append(b, op->expected_hash, 16);
    }
    return rc;
}

static int
encode_value(const sprig_value *v, sprig_buf *b)
{
    int rc = sprig__buf_put_u8(b, (uint8_t)v->kind);
    if (rc || v->kind == SPRIG_VALUE_BYTES) {
        return rc ? rc : put_str(b, v->bytes.data, v->bytes.len, 4);
    }
    uint64_t bits;
    memcpy(&bits, &v->num, sizeof bits);
    return sprig__buf_put_u64(b, bits);
}

static int
encode_kv(const sprig__cmd *c, sprig_buf *b)
{
    size_t nl = strlen(c->ns), kl = strlen(c->key);
    if (nl + kl > SPRIG_KV_KEY_MAX || c->value.kind > SPRIG_VALUE_F64) {
        return sprig__err(SPRIG_EINVAL, "a key-value change over the limits "
                                        "cannot be encoded");
    }
    int rc = sprig__buf_put_u8(b, (uint8_t)c->kv);
    rc = rc ? rc : put_str(b, c->ns, nl, 2);
    rc = rc ? rc : put_str(b, c->key, kl, 2);
    if (rc == 0 && c->kv == SPRIG__KV_SET) {
        rc = encode_value(&c->value, b);
        rc = rc ? rc : sprig__buf_put_u8(b, (uint8_t)c->check);
        rc = rc ? rc : sprig__buf_put_u8(b, c->keep_expiration);
        rc = rc ? rc : sprig__buf_put_u64(b, c->expire_at);
    } else if (rc == 0 && c->kv == SPRIG__KV_INCR) {
        rc = encode_value(&c->value, b);
        rc = rc ? rc : sprig__buf_put_u8(b, c->decrement);
        rc = rc ? rc : sprig__buf_put_u8(b, c->saturating);
    }
    return rc;
}

static int
encode_publish(const sprig__cmd *c, sprig_buf *b)
{
    if (c->n_topics == 0 || c->payload.len > SPRIG_PAYLOAD_MAX) {
        return sprig__err(SPRIG_EINVAL, "a publish without topics or over "
                                        "the limits cannot be encoded");
    }
    int rc = sprig__buf_put_u32(b, (uint32_t)c->n_topics);
    for (size_t i = 0; rc == 0 && i < c->n_topics; i++) {
        const sprig_bytes *t = &c->topics[i];
        if (t->len == 0 || t->len > SPRIG_TOPIC_MAX) {
            return sprig__err(SPRIG_EINVAL,
                              "a topic of %zu bytes cannot be "
                              "encoded",
                              t->len);
        }
        rc = put_str(b, t->data, t->len, 2);
    }
    return rc ? rc : put_str(b, c->payload.data, c->payload.len, 4);
}

static int
encode_body(const sprig__cmd *c, sprig_buf *b)
{
    int rc = 0;
    switch (c->kind) {
    case SPRIG__CMD_TXN:
        rc = sprig__buf_put_u32(b, (uint32_t)c->n_ops);
        for (size_t i = 0; rc == 0 && i < c->n_ops; i++) {
            rc = encode_op(&c->ops[i], b);
        }
        return rc;
    case SPRIG__CMD_KV: return encode_kv(c, b);
    case SPRIG__CMD_SWEEP:
        rc = sprig__buf_put_u32(b, (uint32_t)c->n_items);
        for (size_t i = 0; rc == 0 && i < c->n_items; i++) {
            const sprig__sweep_item *it = &c->items[i];
            rc = sprig__buf_put_u64(b, it->at);
            rc = rc ? rc : put_str(b, it->key.data, it->key.len, 2);
        }
        return rc;
    case SPRIG__CMD_CREATE_DB:
        rc = put_str(b, c->name, strlen(c->name), 1);
        return rc ? rc : put_str(b, c->schema_name, strlen(c->schema_name), 1);
    case SPRIG__CMD_DELETE_DB: return put_str(b, c->name, strlen(c->name), 1);
    case SPRIG__CMD_SCHEMA: return put_str(b, c->schema.data, c->schema.len, 4);
    case SPRIG__CMD_PUBLISH: return encode_publish(c, b);
    }
    return sprig__err(SPRIG_EINVAL, "unknown command kind %d", (int)c->kind);
}

int
sprig__cmd_encode(const sprig__cmd *c, sprig_buf *out)
{
    int rc = sprig__buf_put_u8(out, SPRIG__CMD_VERSION);
    rc = rc ? rc : sprig__buf_put_u8(out, (uint8_t)c->kind);
    rc = rc ? rc : sprig__buf_put_u64(out, c->now_ms);
    return rc ? rc : encode_body(c, out);
}

/* ---- decoding ---------------------------------------------------------- */

typedef struct dec {
    sprig__rd r;
    uint8_t *arena; /* next free byte of c->mem_ */
} dec;

static int
bad(const char *what)
{
    return sprig__err(SPRIG_ECORRUPT, "malformed command: %s", what);
}

/* A length-prefixed string, copied NUL-terminated into the arena. */
static int
get_str(dec *d, int width, size_t max, sprig_bytes *out)
{
    uint32_t n = 0;
    uint8_t b8;
    const uint8_t *p;
    int rc;
    if (width == 1) {
        rc = sprig__rd_u8(&d->r, &b8);
        n = b8;
    } else if (width == 2) {
        rc = sprig__rd_bytes(&d->r, 2, &p);
        n = rc ? 0 : ((uint32_t)p[0] << 8) | p[1];
    } else {
        rc = sprig__rd_u32(&d->r, &n);
    }
    if (rc || n > max || (rc = sprig__rd_bytes(&d->r, n, &p))) {
        return bad("a string runs past the end or its limit");
    }
    memcpy(d->arena, p, n);
    d->arena[n] = 0;
    out->data = d->arena;
    out->len = n;
    d->arena += n + 1;
    return SPRIG_OK;
}

static int
get_bool(dec *d, bool *out)
{
    uint8_t b;
    if (sprig__rd_u8(&d->r, &b) || b > 1) {
        return bad("a flag is neither 0 nor 1");
    }
    *out = b;
    return SPRIG_OK;
}

/* A C string without NULs inside, checked by `check` when given. */
static int
get_name(dec *d, int width, size_t max, const char **out)
{
    sprig_bytes s = {0};
    int rc = get_str(d, width, max, &s);
    if (rc == 0 && memchr(s.data, 0, s.len)) {
        rc = bad("a name holds a NUL byte");
    }
    *out = rc ? NULL : s.data;
    return rc;
}

static int
decode_op(dec *d, sprig__op *op)
{
    uint8_t kind, flags;
    if (sprig__rd_u8(&d->r, &kind) || sprig__rd_u8(&d->r, &flags) ||
        kind > SPRIG__OP_CHECK || flags > 3) {
        return bad("an operation's kind or flags");
    }
    memset(op, 0, sizeof *op);
    op->kind = (sprig__op_kind)kind;
    op->has_id = flags & 1;
    op->has_expected = (flags & 2) != 0;
    int rc = get_name(d, 1, SPRIG_NAME_MAX, &op->collection);
    if (rc || sprig__check_coll_name("collection", op->collection)) {
        return bad("an operation's collection name");
    }
    if (!op->has_id && op->kind != SPRIG__OP_INSERT) {
        return bad("only an insert may omit its id");
    }
    if (op->has_id && (get_str(d, 2, SPRIG_ID_MAX, &op->id) || !op->id.len)) {
        return bad("an operation's id");
    }
    if (op_has_contents(op->kind) &&
        get_str(d, 4, SPRIG_CONTENTS_MAX, &op->contents)) {
        return bad("an operation's contents");
    }
    if (op->has_expected) {
        const uint8_t *h;
        rc = sprig__rd_u64(&d->r, &op->expected_rev);
        rc = rc ? rc : sprig__rd_bytes(&d->r, 16, &h);
        if (rc) {
            return bad("an operation's expected header");
        }
        memcpy(op->expected_hash, h, 16);
    }
    return SPRIG_OK;
}

static int
decode_txn(dec *d, sprig__cmd *c)
{
    uint32_t n;
    if (sprig__rd_u32(&d->r, &n) || n == 0 || n > d->r.left / 3) {
        return bad("a transaction's operation count");
    }
    sprig__op *ops = sprig__calloc(n, sizeof *ops);
    if (!ops) {
        return sprig__err(SPRIG_ENOMEM, "out of memory decoding a command");
    }
    c->ops_mem_ = ops;
    c->ops = ops;
    c->n_ops = n;
    for (uint32_t i = 0; i < n; i++) {
        int rc = decode_op(d, &ops[i]);
        if (rc) {
            return rc;
        }
    }
    return SPRIG_OK;
}

static int
decode_value(dec *d, sprig_value *v)
{
    uint8_t kind;
    memset(v, 0, sizeof *v);
    if (sprig__rd_u8(&d->r, &kind) || kind > SPRIG_VALUE_F64) {
        return bad("a value's kind");
    }
    v->kind = (sprig_value_kind)kind;
    if (kind == SPRIG_VALUE_BYTES) {
        return get_str(d, 4, SPRIG_KV_VALUE_MAX, &v->bytes);
    }
    uint64_t bits;
    if (sprig__rd_u64(&d->r, &bits)) {
        return bad("a number runs past the end");
    }
    memcpy(&v->num, &bits, sizeof bits);
    return SPRIG_OK;
}

static int
decode_kv(dec *d, sprig__cmd *c)
{
    uint8_t kind, check;
    if (sprig__rd_u8(&d->r, &kind) || kind < SPRIG__KV_SET ||
        kind > SPRIG__KV_TAKE) {
        return bad("a key-value change's kind");
    }
    c->kv = (sprig__kv_cmd_kind)kind;
    int rc = get_name(d, 2, SPRIG_KV_KEY_MAX, &c->ns);
    rc = rc ? rc : get_name(d, 2, SPRIG_KV_KEY_MAX, &c->key);
    if (rc || !*c->key || strlen(c->ns) + strlen(c->key) > SPRIG_KV_KEY_MAX) {
        return bad("a key-value change's namespace or key");
    }
    if (c->kv == SPRIG__KV_SET) {
        rc = decode_value(d, &c->value);
        if (rc == 0 &&
            (sprig__rd_u8(&d->r, &check) || check > SPRIG_KV_ONLY_IF_PRESENT)) {
            rc = bad("a set's check");
        }
        c->check = (sprig_kv_check)check;
        rc = rc ? rc : get_bool(d, &c->keep_expiration);
        if (rc == 0 && sprig__rd_u64(&d->r, &c->expire_at)) {
            rc = bad("a set's expiry");
        }
    } else if (c->kv == SPRIG__KV_INCR) {
        rc = decode_value(d, &c->value);
        if (rc == 0 && c->value.kind == SPRIG_VALUE_BYTES) {
            rc = bad("an increment by bytes");
        }
        rc = rc ? rc : get_bool(d, &c->decrement);
        rc = rc ? rc : get_bool(d, &c->saturating);
    }
    return rc;
}

static int
decode_sweep(dec *d, sprig__cmd *c)
{
    uint32_t n;
    if (sprig__rd_u32(&d->r, &n) || n > d->r.left / 11) {
        return bad("a sweep step's key count");
    }
    sprig__sweep_item *it = sprig__calloc(n ? n : 1, sizeof *it);
    if (!it) {
        return sprig__err(SPRIG_ENOMEM, "out of memory decoding a command");
    }
    c->ops_mem_ = it;
    c->items = it;
    c->n_items = n;
    for (uint32_t i = 0; i < n; i++) {
        if (sprig__rd_u64(&d->r, &it[i].at) || it[i].at == 0 ||
            get_str(d, 2, SPRIG_KV_KEY_MAX + 1, &it[i].key) ||
            !memchr(it[i].key.data, 0, it[i].key.len)) {
            return bad("a sweep step's key");
        }
    }
    return SPRIG_OK;
}

static int
decode_admin(dec *d, sprig__cmd *c)
{
    int rc = SPRIG_OK;
    if (c->kind == SPRIG__CMD_SCHEMA) {
        sprig_schema_def *s = NULL;
        if (get_str(d, 4, d->r.left, &c->schema) ||
            sprig__schema_decode(c->schema, &s)) {
            rc = bad("a schema registration's schema");
        }
        sprig__free(s);
        return rc;
    }
    if (get_name(d, 1, SPRIG_NAME_MAX, &c->name) ||
        sprig__check_db_name(c->name)) {
        return bad("a database name");
    }
    if (c->kind == SPRIG__CMD_CREATE_DB &&
        (get_name(d, 1, SPRIG_NAME_MAX, &c->schema_name) ||
         sprig__check_coll_name("schema", c->schema_name))) {
        return bad("a schema name");
    }
    return rc;
}

static int
decode_publish(dec *d, sprig__cmd *c)
{
    uint32_t n;
    if (sprig__rd_u32(&d->r, &n) || n == 0 || n > d->r.left / 3) {
        return bad("a publish's topic count");
    }
    sprig_bytes *t = sprig__calloc(n, sizeof *t);
    if (!t) {
        return sprig__err(SPRIG_ENOMEM, "out of memory decoding a command");
    }
    c->ops_mem_ = t;
    c->topics = t;
    c->n_topics = n;
    for (uint32_t i = 0; i < n; i++) {
        if (get_str(d, 2, SPRIG_TOPIC_MAX, &t[i]) || t[i].len == 0) {
            return bad("a publish's topic");
        }
    }
    if (get_str(d, 4, SPRIG_PAYLOAD_MAX, &c->payload)) {
        return bad("a publish's payload");
    }
    return SPRIG_OK;
}

static int
decode_body(dec *d, sprig__cmd *c)
{
    switch (c->kind) {
    case SPRIG__CMD_TXN: return decode_txn(d, c);
    case SPRIG__CMD_KV: return decode_kv(d, c);
    case SPRIG__CMD_SWEEP: return decode_sweep(d, c);
    case SPRIG__CMD_CREATE_DB:
    case SPRIG__CMD_DELETE_DB:
    case SPRIG__CMD_SCHEMA: return decode_admin(d, c);
    case SPRIG__CMD_PUBLISH: return decode_publish(d, c);
    }
    return bad("unknown kind");
}

int
sprig__cmd_decode(sprig_bytes in, sprig__cmd *c)
{
    memset(c, 0, sizeof *c);
    dec d = {{in.data, in.len}, NULL};
    uint8_t ver, kind;
    if (sprig__rd_u8(&d.r, &ver) || ver != SPRIG__CMD_VERSION) {
        return bad("unknown version");
    }
    if (sprig__rd_u8(&d.r, &kind) || sprig__rd_u64(&d.r, &c->now_ms)) {
        return bad("truncated header");
    }
    c->kind = (sprig__cmd_kind)kind;
    c->mem_ = sprig__malloc(in.len + 1);
    if (!c->mem_) {
        return sprig__err(SPRIG_ENOMEM, "out of memory decoding a command");
    }
    d.arena = c->mem_;
    int rc = decode_body(&d, c);
    if (rc == 0 && d.r.left) {
        rc = bad("trailing bytes");
    }
    return rc;
}

void
sprig__cmd_clear(sprig__cmd *c)
{
    if (!c) {
        return;
    }
    sprig__free(c->mem_);
    sprig__free(c->ops_mem_);
    sprig__free(c->hash_mem_);
    sprig_value_clear(&c->out.value);
    memset(c, 0, sizeof *c);
}

/* ---- the current request id ---------------------------------------------
 */

static _Thread_local bool rid_set;
static _Thread_local uint8_t rid_cur[16];

void
sprig__rid_set_current(const uint8_t rid[16])
{
    rid_set = rid != NULL;
    if (rid) {
        memcpy(rid_cur, rid, sizeof rid_cur);
    }
}

bool
sprig__rid_take_current(uint8_t rid[16])
{
    if (!rid_set) {
        return false;
    }
    memcpy(rid, rid_cur, sizeof rid_cur);
    rid_set = false;
    return true;
}
