/*
 * codec.c -- the value codec (codec.h): LZ4 compression above a threshold,
 * then sealing under the vault's current key; and back.  Stateless: the
 * caller brings the scope's codec, the location and its scratch buffers,
 * and keeps the flags beside the stored bytes.
 *
 * Compression is kept only when it saves bytes, so incompressible values
 * are stored as they are (flags say which).  The associated data of a
 * sealed value binds its flags and its location (codec.h), so neither a
 * flipped flag nor a value copied to another document, view key or
 * database opens.  A plaintext value of a scope that asks for it carries a
 * CRC-32C after its payload (SPRIG__CF_CRC), over its location, header
 * and payload, checked before anything else is done with it.
 */
#include "codec.h"
#include "crc_hw.h"
#include "local.h"

#include <lz4.h>
#include <stdio.h>

/* Associated data: flags, kind, db NUL scope NUL id (bounded by names and
 * key limits: 64 + 130 + 512). */
#define AD_MAX 1024

static size_t
make_ad(const sprig__vloc *l, uint8_t flags, uint8_t ad[AD_MAX])
{
    size_t dn = strlen(l->db), sn = strlen(l->scope), n = 0;
    if (2 + dn + 1 + sn + 1 + l->id.len > AD_MAX) { /* never, by limits */
        dn = dn > 200 ? 200 : dn;
        sn = sn > 200 ? 200 : sn;
    }
    ad[n++] = flags;
    ad[n++] = (uint8_t)l->kind;
    memcpy(ad + n, l->db, dn);
    n += dn;
    ad[n++] = 0;
    memcpy(ad + n, l->scope, sn);
    n += sn;
    ad[n++] = 0;
    size_t idn = l->id.len < AD_MAX - n ? l->id.len : AD_MAX - n;
    if (idn) {
        memcpy(ad + n, l->id.data, idn);
    }
    n += idn;
    /* format 3 (flags SPRIG__CF_CRC): the header beside the value too (a
     * fixed length per kind, so the id's end stays unambiguous) */
    size_t hn = l->hdr.len < AD_MAX - n ? l->hdr.len : AD_MAX - n;
    if ((flags & SPRIG__CF_CRC) && hn) {
        memcpy(ad + n, l->hdr.data, hn);
        n += hn;
    }
    return n;
}

/* Compress `p` into out[at..]: [len u32 BE][block]; false when it does
 * not save at least a few bytes (then nothing is kept). */
static int
compress_into(sprig_bytes p, sprig_buf *out, size_t at, bool *kept)
{
    int bound = LZ4_compressBound((int)p.len);
    *kept = false;
    if (sprig__buf_reserve(out, at + 4 + (size_t)bound - out->len)) {
        return SPRIG_ENOMEM;
    }
    uint8_t *o = (uint8_t *)out->data + at;
    int n = LZ4_compress_default((const char *)p.data, (char *)o + 4,
                                 (int)p.len, bound);
    if (n <= 0 || (size_t)n + 4 + 8 > p.len) {
        return SPRIG_OK;
    }
    sprig__put_u32be(o, (uint32_t)p.len);
    out->len = at + 4 + (size_t)n;
    *kept = true;
    return SPRIG_OK;
}

/* The CRC-32C of a value: flags, kind, id length (u16 BE), scope NUL, id,
 * the header bytes beside it, then the stored payload -- the format-3
 * definition, which stored values carry: the bytes and their order never
 * change.  Every read computes it, so it is one pass of the CPU's CRC32
 * instruction over the pieces where there is one (checked once: SSE 4.2,
 * crc_hw.h); else the table-driven sprig__crc32c_update.  The fixed start
 * (flags to scope) may come from the caller (vloc.crc_start), and a header
 * lying right before its payload is one piece with it. */
#if defined(SPRIG__CRC_HW)
__attribute__((target("sse4.2"))) static uint32_t
crc_hw_start(const sprig__vloc *l, uint8_t flags)
{
    uint8_t f[4] = {flags, (uint8_t)l->kind, (uint8_t)(l->id.len >> 8),
                    (uint8_t)l->id.len};
    uint32_t f32;
    memcpy(&f32, f, 4);
    uint32_t c = __builtin_ia32_crc32si(~0u, f32);
    return sprig__crc_hw(c, (const uint8_t *)l->scope, strlen(l->scope) + 1);
}

__attribute__((target("sse4.2"))) static uint32_t
crc_hw(const sprig__vloc *l, uint8_t flags, sprig_bytes body)
{
    uint32_t c = l->crc_start && flags == SPRIG__CF_CRC
                     ? *l->crc_start
                     : crc_hw_start(l, flags);
    if (l->id.len == 8) { /* a u64 id: one step */
        uint64_t v;
        memcpy(&v, l->id.data, 8);
        c = (uint32_t)__builtin_ia32_crc32di(c, v);
    } else {
        c = sprig__crc_hw(c, l->id.data, l->id.len);
    }
    if (l->hdr.len && l->hdr.data + l->hdr.len == body.data) {
        /* the header right before the payload (a stored document): the
         * same bytes in the same order, one pass */
        return ~sprig__crc_hw(c, l->hdr.data, l->hdr.len + body.len);
    }
    c = sprig__crc_hw(c, l->hdr.data, l->hdr.len);
    return ~sprig__crc_hw(c, body.data, body.len);
}
#endif

/* The table-driven start (sprig__crc32c_update's convention). */
static uint32_t
crc_sw_start(const sprig__vloc *l, uint8_t flags)
{
    uint8_t f[4] = {flags, (uint8_t)l->kind, (uint8_t)(l->id.len >> 8),
                    (uint8_t)l->id.len};
    uint32_t c = sprig__crc32c_update(0, f, 4);
    return sprig__crc32c_update(c, l->scope, strlen(l->scope) + 1);
}

uint32_t
sprig__codec_crc_start(const sprig__vloc *l, uint8_t flags)
{
#if defined(SPRIG__CRC_HW)
    if (sprig__crc_hw_ok()) {
        return crc_hw_start(l, flags);
    }
#endif
    return crc_sw_start(l, flags);
}

/* sprig__codec_crc, inlined into the read's check_crc. */
static inline uint32_t
value_crc(const sprig__vloc *l, uint8_t flags, sprig_bytes body)
{
#if defined(SPRIG__CRC_HW)
    if (sprig__crc_hw_ok()) {
        return crc_hw(l, flags, body);
    }
#endif
    uint32_t c = l->crc_start && flags == SPRIG__CF_CRC
                     ? *l->crc_start
                     : crc_sw_start(l, flags);
    c = sprig__crc32c_update(c, l->id.data, l->id.len);
    c = sprig__crc32c_update(c, l->hdr.data, l->hdr.len);
    return sprig__crc32c_update(c, body.data, body.len);
}

uint32_t
sprig__codec_crc(const sprig__vloc *l, uint8_t flags, sprig_bytes body)
{
    return value_crc(l, flags, body);
}

/* Append the CRC of m (plain, or out's own contents) to out; out then
 * holds exactly m and its CRC. */
static int
append_crc(const sprig__vloc *l, uint8_t flags, sprig_bytes m, sprig_buf *out)
{
    bool inside = m.len && m.data == (const uint8_t *)out->data;
    if (sprig__buf_reserve(out, m.len + SPRIG__CRC_BYTES - out->len)) {
        return sprig__err(SPRIG_ENOMEM, "out of memory encoding a value");
    }
    if (!inside && m.len) {
        memcpy(out->data, m.data, m.len);
    }
    uint8_t *o = out->data;
    uint32_t c = value_crc(l, flags, (sprig_bytes){o, m.len});
    for (int i = 0; i < 4; i++, c >>= 8) {
        o[m.len + (size_t)i] = (uint8_t)c;
    }
    out->len = m.len + SPRIG__CRC_BYTES;
    return SPRIG_OK;
}

/* What a value is, for a message: "document 'x' of collection 'c'". */
static void
describe(const sprig__vloc *l, char *out, size_t n)
{
    char id[48];
    size_t k = 0;
    const uint8_t *p = l->id.data;
    for (size_t i = 0; i < l->id.len && k + 4 < sizeof id; i++) {
        id[k++] =
            p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' ? (char)p[i] : '?';
    }
    id[k] = 0;
    const char *tail = k < l->id.len ? "..." : "";
    switch (l->kind) {
    case 'd':
        snprintf(out, n, "document '%s%s' of collection '%s'", id, tail,
                 l->scope);
        break;
    case 'v':
        snprintf(out, n, "the record of document '%s%s' in view '%s'", id, tail,
                 l->scope);
        break;
    case 'r': snprintf(out, n, "a reduce value of view '%s'", l->scope); break;
    case 'k':
        snprintf(out, n, "the value of key-value key '%s%s'", id, tail);
        break;
    default: snprintf(out, n, "a stored value");
    }
}

/* Put what the value is and its database directory in front of the
 * message of a failure `rc` to open it. */
static int
named(const sprig__vloc *l, int rc)
{
    char what[160], msg[400];
    describe(l, what, sizeof what);
    snprintf(msg, sizeof msg, "%s", sprig_errmsg());
    return sprig__err(rc, "%s (database directory '%s'): %s", what, l->db, msg);
}

/* The error of a value whose CRC does not hold (or that is too short to
 * have one): out of line, so the read's check stays small. */
__attribute__((noinline, cold)) static int
crc_failed(const sprig__vloc *l, uint8_t flags, size_t len, uint32_t want,
           uint32_t got)
{
    char what[160];
    describe(l, what, sizeof what);
    if (len < SPRIG__CRC_BYTES) {
        return sprig__err(SPRIG_ECORRUPT,
                          "%s is malformed (%zu bytes, codec flags %#x)", what,
                          len, flags);
    }
    return sprig__err(SPRIG_ECORRUPT,
                      "%s is damaged: its CRC-32C is %08x, its stored "
                      "bytes give %08x",
                      what, want, got);
}

/* Check and strip the CRC of `stored` (flags `flags`). */
static int
check_crc(const sprig__vloc *l, uint8_t flags, sprig_bytes *stored)
{
    if (stored->len < SPRIG__CRC_BYTES) {
        return crc_failed(l, flags, stored->len, 0, 0);
    }
    size_t n = stored->len - SPRIG__CRC_BYTES;
    const uint8_t *t = stored->data + n;
    uint32_t want = (uint32_t)t[0] | (uint32_t)t[1] << 8 |
                    (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    uint32_t got = value_crc(l, flags, (sprig_bytes){stored->data, n});
    if (got != want) {
        return crc_failed(l, flags, stored->len, want, got);
    }
    stored->len = n;
    return SPRIG_OK;
}

int
sprig__codec_encode(const sprig__codec *c, const sprig__vloc *loc,
                    sprig_bytes plain, sprig_buf *out, uint8_t *flags,
                    sprig_bytes *stored)
{
    *flags = 0;
    *stored = plain;
    out->len = 0;
    if (plain.len > (size_t)INT32_MAX - 4096) { /* LZ4 takes an int */
        return sprig__err(SPRIG_ETOOBIG, "a value of %zu bytes is too large",
                          plain.len);
    }
    bool z = false;
    if (c && plain.len > c->compress_min &&
        compress_into(plain, out, 0, &z) != 0) {
        return sprig__err(SPRIG_ENOMEM, "out of memory compressing");
    }
    sprig_bytes m = z ? sprig_buf_bytes(out) : plain;
    *flags = z ? SPRIG__CF_LZ4 : 0;
    if (c && c->crc) { /* sealed: the header joins the associated data */
        *flags |= SPRIG__CF_CRC;
    }
    if (c && c->crc && !c->vault) {
        int rc = append_crc(loc, *flags, m, out);
        *stored = rc ? plain : sprig_buf_bytes(out);
        return rc;
    }
    if (!c || !c->vault) {
        *stored = m;
        return SPRIG_OK;
    }
    *flags |= SPRIG__CF_ENC;
    size_t at = z ? out->len : 0;
    if (sprig__buf_reserve(out, at + m.len + SPRIG__SEAL_OVERHEAD - out->len)) {
        return sprig__err(SPRIG_ENOMEM, "out of memory encrypting");
    }
    m.data = z ? out->data : plain.data; /* the buffer may have moved */
    uint8_t ad[AD_MAX];
    size_t adn = make_ad(loc, *flags, ad);
    uint8_t *o = (uint8_t *)out->data + at;
    sprig__vault_seal(c->vault, ad, adn, m.data, m.len, o);
    size_t n = m.len + SPRIG__SEAL_OVERHEAD;
    if (at) {
        memmove(out->data, o, n);
    }
    out->len = n;
    *stored = sprig_buf_bytes(out);
    return SPRIG_OK;
}

static int
decompress(sprig_bytes in, sprig_buf *scratch, size_t at, sprig_bytes *plain)
{
    if (in.len < 4) {
        return sprig__err(SPRIG_ECORRUPT, "a compressed value is truncated");
    }
    uint32_t n = sprig__get_u32be(in.data);
    /* LZ4 makes at most ~255 bytes of one: a larger claim is damage, and
     * must not be allocated (found by fuzz_kv_record: up to 2 GiB) */
    if ((uint64_t)n > (uint64_t)(in.len - 4) * 255u + 16u) {
        return sprig__err(SPRIG_ECORRUPT,
                          "a compressed value of %zu bytes claims %u bytes",
                          in.len, n);
    }
    uintptr_t a = (uintptr_t)in.data, b = (uintptr_t)scratch->data;
    bool inside = scratch->data && a >= b && a < b + scratch->cap;
    size_t in_off = inside ? (size_t)(a - b) : 0;
    bool big = n > (uint32_t)INT32_MAX - 4096;
    if (big || sprig__buf_reserve(scratch, at + n - scratch->len)) {
        return sprig__err(big ? SPRIG_ECORRUPT : SPRIG_ENOMEM,
                          "cannot decompress a value of %u bytes", n);
    }
    if (inside) {
        in.data = (const uint8_t *)scratch->data + in_off;
    }
    char *o = (char *)scratch->data + at;
    int got = LZ4_decompress_safe((const char *)in.data + 4, o,
                                  (int)(in.len - 4), (int)n);
    if (got < 0 || (uint32_t)got != n) {
        return sprig__err(SPRIG_ECORRUPT, "a compressed value is corrupt");
    }
    scratch->len = at + n;
    *plain = (sprig_bytes){o, n};
    return SPRIG_OK;
}

static int
unseal(sprig__vault *v, const sprig__vloc *loc, uint8_t flags,
       sprig_bytes stored, sprig_buf *scratch, sprig_bytes *plain)
{
    if (!v) {
        return sprig__err(SPRIG_EAUTH,
                          "this value is encrypted and the storage was "
                          "opened without its vault");
    }
    if (stored.len < SPRIG__SEAL_OVERHEAD) {
        return sprig__err(SPRIG_ECORRUPT, "an encrypted value is truncated");
    }
    size_t n = stored.len - SPRIG__SEAL_OVERHEAD;
    if (sprig__buf_reserve(scratch, n + 1 - scratch->len)) {
        return sprig__err(SPRIG_ENOMEM, "out of memory decrypting");
    }
    uint8_t ad[AD_MAX];
    size_t adn = make_ad(loc, flags, ad);
    int rc =
        sprig__vault_unseal(v, ad, adn, stored.data, stored.len, scratch->data);
    scratch->len = rc ? 0 : n;
    *plain = (sprig_bytes){scratch->data, n};
    return rc ? named(loc, rc) : rc;
}

int
sprig__codec_check(const sprig__vloc *loc, sprig_bytes stored,
                   sprig_bytes *plain)
{
    int rc = check_crc(loc, SPRIG__CF_CRC, &stored);
    *plain = stored;
    return rc;
}

int
sprig__codec_decode(sprig__vault *v, const sprig__vloc *loc, uint8_t flags,
                    sprig_bytes stored, sprig_buf *scratch, sprig_bytes *plain)
{
    *plain = stored;
    if (flags == SPRIG__CF_CRC) { /* the common case: plain, with its CRC */
        int rc = check_crc(loc, flags, &stored);
        *plain = stored;
        return rc;
    }
    if (flags == 0 && loc->crc_required) {
        char what[160];
        describe(loc, what, sizeof what);
        return sprig__err(SPRIG_ECORRUPT,
                          "%s is damaged: its codec flags say it has no "
                          "CRC-32C, but every value of this database has one",
                          what);
    }
    if (flags == 0) {
        return SPRIG_OK;
    }
    if (flags & ~SPRIG__CF_ALL) {
        return sprig__err(SPRIG_ECORRUPT, "a stored value has codec flags %#x",
                          flags);
    }
    if ((flags & SPRIG__CF_CRC) && !(flags & SPRIG__CF_ENC)) {
        int rc = check_crc(loc, flags, &stored);
        *plain = stored;
        if (rc || flags == SPRIG__CF_CRC) {
            return rc;
        }
    }
    scratch->len = 0;
    sprig_bytes m = stored;
    if (flags & SPRIG__CF_ENC) {
        int rc = unseal(v, loc, flags, stored, scratch, &m);
        if (rc) {
            return rc;
        }
    }
    if (!(flags & SPRIG__CF_LZ4)) {
        *plain = m;
        return SPRIG_OK;
    }
    return decompress(m, scratch, scratch->len, plain);
}

int
sprig__codec_open_into(sprig__vault *v, const sprig__vloc *loc, uint8_t flags,
                       sprig_bytes stored, uint8_t *out)
{
    if (!v) {
        return sprig__err(SPRIG_EAUTH,
                          "this value is encrypted and the storage was "
                          "opened without its vault");
    }
    uint8_t ad[AD_MAX];
    size_t adn = make_ad(loc, flags, ad);
    int rc = sprig__vault_unseal(v, ad, adn, stored.data, stored.len, out);
    return rc ? named(loc, rc) : rc;
}

uint32_t
sprig__codec_key_id(uint8_t flags, sprig_bytes stored)
{
    if (!(flags & SPRIG__CF_ENC) || stored.len < 4) {
        return 0;
    }
    return sprig__get_u32be(stored.data);
}
