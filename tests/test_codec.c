/*
 * test_codec.c -- the value codec (src/local/codec.c) and the vault's
 * sealing (vault.c), below the storage: every flag combination round-trips
 * (random sizes and contents, seeded), compression is kept only when it
 * saves bytes, a sealed value opens only at the location it was sealed for
 * (another id, scope, database, kind or flag byte fails authentication),
 * a flipped bit or a truncation is an error and never data, and an
 * encrypted value without a vault is SPRIG_EAUTH; the CRC of plaintext
 * values (SPRIG__CF_CRC) refuses every single-byte flip and a value read
 * at another location.
 */
#include "testutil.h"

#include "local/codec.h"
#include "local/local.h"

#include <sodium.h>

static const char *root;
static uint64_t seed;

static sprig__vault *
vault_at(const char *name)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    sprig__vault *v = NULL;
    SPRIG_OK_(sprig__vault_open(dir, &o, true, &v));
    return v;
}

static sprig__vloc
loc(const char *id)
{
    sprig__vloc l = {'d', "db.1", "docs", sprig_str(id)};
    return l;
}

/* Encode then decode `plain`; returns the flags used. */
static uint8_t
round_trip(const sprig__codec *c, sprig__vault *v, sprig_bytes plain)
{
    sprig_buf out = {0}, scratch = {0};
    sprig__vloc l = loc("x");
    uint8_t f;
    sprig_bytes stored, back;
    SPRIG_OK_(sprig__codec_encode(c, &l, plain, &out, &f, &stored));
    SPRIG_OK_(sprig__codec_decode(v, &l, f, stored, &scratch, &back));
    assert_int_equal(back.len, plain.len);
    if (plain.len) {
        assert_memory_equal(back.data, plain.data, plain.len);
    }
    sprig_buf_clear(&out);
    sprig_buf_clear(&scratch);
    return f;
}

static void
test_flags(void **state)
{
    (void)state;
    sprig__vault *v = vault_at("flags");
    char text[1000];
    for (size_t i = 0; i < sizeof text; i++) {
        text[i] = "sprig codec "[i % 12];
    }
    sprig_bytes p = {text, sizeof text};
    sprig__codec none = {NULL, UINT32_MAX}, z = {NULL, 128};
    sprig__codec e = {v, UINT32_MAX}, ze = {v, 128};
    assert_int_equal(round_trip(&none, NULL, p), 0);
    assert_int_equal(round_trip(&z, NULL, p), SPRIG__CF_LZ4);
    assert_int_equal(round_trip(&e, v, p), SPRIG__CF_ENC);
    assert_int_equal(round_trip(&ze, v, p), SPRIG__CF_LZ4 | SPRIG__CF_ENC);
    /* at or below the threshold: not compressed */
    assert_int_equal(round_trip(&z, NULL, (sprig_bytes){text, 128}), 0);
    /* incompressible: stored as it is */
    uint8_t rnd[600];
    randombytes_buf(rnd, sizeof rnd);
    assert_int_equal(round_trip(&z, NULL, (sprig_bytes){rnd, sizeof rnd}), 0);
    /* plain values are not copied */
    sprig_buf out = {0};
    uint8_t f;
    sprig_bytes st;
    sprig__vloc l = loc("x");
    SPRIG_OK_(sprig__codec_encode(&none, &l, p, &out, &f, &st));
    assert_ptr_equal(st.data, p.data);
    /* sealing: the key id, a fresh nonce each time, 44 bytes more */
    sprig_buf out2 = {0};
    sprig_bytes st2;
    SPRIG_OK_(sprig__codec_encode(&e, &l, p, &out, &f, &st));
    SPRIG_OK_(sprig__codec_encode(&e, &l, p, &out2, &f, &st2));
    assert_int_equal(st.len, p.len + SPRIG__SEAL_OVERHEAD);
    assert_int_equal(sprig__codec_key_id(f, st), sprig__vault_current(v));
    assert_memory_not_equal(st.data, st2.data, st.len);
    assert_null(memmem(st.data, st.len, "sprig codec", 11));
    sprig_buf_clear(&out);
    sprig_buf_clear(&out2);
    sprig__vault_free(v);
}

/* A value sealed for one place opens nowhere else. */
static void
test_location_bound(void **state)
{
    (void)state;
    sprig__vault *v = vault_at("bound");
    sprig__codec ze = {v, 16};
    sprig_bytes p = sprig_str("a secret that compresses compresses compresses");
    sprig__vloc l = loc("id-1");
    sprig_buf out = {0}, scratch = {0};
    uint8_t f;
    sprig_bytes st, back;
    SPRIG_OK_(sprig__codec_encode(&ze, &l, p, &out, &f, &st));
    sprig__vloc other[5] = {loc("id-2"), loc("id-1"), loc("id-1"), loc("id-1"),
                            loc("id-1")};
    other[1].scope = "other";
    other[2].db = "db.2";
    other[3].kind = 'v';
    other[4].id = sprig_str("id-1x");
    for (int i = 0; i < 5; i++) {
        SPRIG_EXPECT(SPRIG_EAUTH,
                     sprig__codec_decode(v, &other[i], f, st, &scratch, &back));
    }
    /* the flags are bound too */
    SPRIG_EXPECT(SPRIG_EAUTH, sprig__codec_decode(v, &l, SPRIG__CF_ENC, st,
                                                  &scratch, &back));
    /* any flipped bit */
    uint8_t *b = (uint8_t *)st.data;
    for (size_t i = 0; i < st.len; i += 7) {
        b[i] ^= 0x10;
        int rc = sprig__codec_decode(v, &l, f, st, &scratch, &back);
        assert_true(rc == SPRIG_EAUTH || rc == SPRIG_ECORRUPT);
        b[i] ^= 0x10;
    }
    SPRIG_OK_(sprig__codec_decode(v, &l, f, st, &scratch, &back));
    assert_true(tu_bytes_eq(back, (const char *)p.data));
    /* truncated, unknown flags, no vault */
    SPRIG_EXPECT(SPRIG_ECORRUPT,
                 sprig__codec_decode(v, &l, f, (sprig_bytes){st.data, 20},
                                     &scratch, &back));
    SPRIG_EXPECT(SPRIG_ECORRUPT,
                 sprig__codec_decode(v, &l, 0x80, st, &scratch, &back));
    SPRIG_EXPECT(SPRIG_EAUTH,
                 sprig__codec_decode(NULL, &l, f, st, &scratch, &back));
    /* a corrupt compressed block is an error, not data */
    uint8_t bad[32] = {0, 0, 1, 0, 0xff, 0xff, 0xff};
    SPRIG_EXPECT(SPRIG_ECORRUPT,
                 sprig__codec_decode(v, &l, SPRIG__CF_LZ4,
                                     (sprig_bytes){bad, sizeof bad}, &scratch,
                                     &back));
    sprig_buf_clear(&out);
    sprig_buf_clear(&scratch);
    sprig__vault_free(v);
}

/* Random sizes and contents under every codec, seeded. */
static void
test_random(void **state)
{
    (void)state;
    sprig__vault *v = vault_at("random");
    sprig__codec cs[4] = {
        {NULL, UINT32_MAX}, {NULL, 64}, {v, UINT32_MAX}, {v, 64}};
    uint64_t s = seed;
    uint8_t *buf = malloc(70000);
    assert_non_null(buf);
    for (int i = 0; i < 400; i++) {
        size_t n = tu_rand(&s) % (i % 50 == 0 ? 70000 : 3000);
        unsigned alpha = 1 + (unsigned)(tu_rand(&s) % 256);
        for (size_t j = 0; j < n; j++) {
            buf[j] = (uint8_t)(tu_rand(&s) % alpha);
        }
        round_trip(&cs[i % 4], v, (sprig_bytes){buf, n});
    }
    free(buf);
    sprig__vault_free(v);
}

/* Rotation inside the vault: both keys open while both are held. */
static void
test_vault_keys(void **state)
{
    (void)state;
    sprig__vault *v = vault_at("keys");
    sprig__codec e = {v, UINT32_MAX};
    sprig__vloc l = loc("k");
    sprig_buf out = {0}, scratch = {0};
    uint8_t f;
    sprig_bytes st, back;
    SPRIG_OK_(sprig__codec_encode(&e, &l, sprig_str("old"), &out, &f, &st));
    uint32_t k1 = sprig__vault_current(v);
    SPRIG_OK_(sprig__vault_add_key(v));
    assert_int_not_equal(sprig__vault_current(v), k1);
    assert_int_equal(sprig__vault_keys(v), 2);
    SPRIG_OK_(sprig__codec_decode(v, &l, f, st, &scratch, &back));
    SPRIG_OK_(sprig__vault_drop_old(v));
    assert_int_equal(sprig__vault_keys(v), 1);
    SPRIG_EXPECT(SPRIG_EAUTH,
                 sprig__codec_decode(v, &l, f, st, &scratch, &back));
    assert_non_null(strstr(sprig_errmsg(), "master key"));
    sprig__vault_free(v);
    /* the file keeps the rotation: reopened, the new key is current */
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/keys", root);
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    SPRIG_OK_(sprig__vault_open(dir, &o, false, &v));
    assert_int_equal(sprig__vault_current(v), k1 + 1);
    assert_int_equal(sprig__vault_keys(v), 1);
    sprig__vault_free(v);
    sprig_buf_clear(&out);
    sprig_buf_clear(&scratch);
}

/* SPRIG__CF_CRC: round trips (plain and compressed, the plain one without
 * a copy on read); every single-byte flip of the stored bytes, another id,
 * scope, kind or header byte is SPRIG_ECORRUPT naming the value; flags 0
 * where a CRC is required is SPRIG_ECORRUPT; sealed, the bit binds the
 * header into the associated data (another header: SPRIG_EAUTH). */
static void
test_crc(void **state)
{
    (void)state;
    sprig__vault *v = vault_at("crc");
    char text[300];
    for (size_t i = 0; i < sizeof text; i++) {
        text[i] = "checksummed "[i % 12];
    }
    sprig_bytes p = {text, sizeof text};
    sprig__codec c = {NULL, UINT32_MAX, true}, cz = {NULL, 64, true};
    sprig__codec ce = {v, UINT32_MAX, true};
    assert_int_equal(round_trip(&c, NULL, p), SPRIG__CF_CRC);
    assert_int_equal(round_trip(&cz, NULL, p), SPRIG__CF_CRC | SPRIG__CF_LZ4);
    assert_int_equal(round_trip(&ce, v, p), SPRIG__CF_CRC | SPRIG__CF_ENC);
    uint8_t hdr[23] = {1, 2, 3}, f;
    sprig__vloc l = loc("doc-1");
    l.hdr = (sprig_bytes){hdr, sizeof hdr};
    sprig_buf out = {0}, scratch = {0};
    sprig_bytes st, back;
    SPRIG_OK_(sprig__codec_encode(&c, &l, p, &out, &f, &st));
    assert_int_equal(st.len, p.len + SPRIG__CRC_BYTES);
    SPRIG_OK_(sprig__codec_decode(NULL, &l, f, st, &scratch, &back));
    assert_ptr_equal(back.data, st.data); /* no copy */
    assert_int_equal(back.len, p.len);
    uint8_t *b = out.data;
    for (size_t i = 0; i < st.len; i++) {
        b[i] ^= 0x10;
        SPRIG_EXPECT(SPRIG_ECORRUPT,
                     sprig__codec_decode(NULL, &l, f, st, &scratch, &back));
        b[i] ^= 0x10;
    }
    assert_non_null(strstr(sprig_errmsg(), "document 'doc-1' of collection "
                                           "'docs' is damaged: its CRC-32C"));
    sprig__vloc other[4] = {loc("doc-2"), l, l, l};
    other[0].hdr = l.hdr;
    other[1].scope = "docs2";
    other[2].kind = 'v';
    uint8_t hdr2[23] = {1, 2, 4};
    other[3].hdr = (sprig_bytes){hdr2, sizeof hdr2};
    for (int i = 0; i < 4; i++) {
        SPRIG_EXPECT(SPRIG_ECORRUPT, sprig__codec_decode(NULL, &other[i], f, st,
                                                         &scratch, &back));
    }
    l.crc_required = true;
    SPRIG_EXPECT(SPRIG_ECORRUPT,
                 sprig__codec_decode(NULL, &l, 0, p, &scratch, &back));
    SPRIG_OK_(sprig__codec_encode(&ce, &l, p, &out, &f, &st));
    SPRIG_OK_(sprig__codec_decode(v, &l, f, st, &scratch, &back));
    SPRIG_EXPECT(SPRIG_EAUTH,
                 sprig__codec_decode(v, &other[3], f, st, &scratch, &back));
    SPRIG_EXPECT(SPRIG_EAUTH, sprig__codec_decode(v, &l, SPRIG__CF_ENC, st,
                                                  &scratch, &back));
    sprig_buf_clear(&out);
    sprig_buf_clear(&scratch);
    sprig__vault_free(v);
}

/* The CRC of a value is the format-3 definition whatever path computes it
 * (the CPU's CRC32 instruction in one pass, or the table): every piece
 * length 0..19 (each tail of the 8-, 4-, 2- and 1-byte steps), against
 * the definition fed piece by piece through sprig__crc32c_update. */
static void
test_crc_definition(void **state)
{
    (void)state;
    uint8_t buf[64], scope[24];
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] = (uint8_t)(i * 37 + 11);
    }
    for (size_t n = 0; n < 20; n++) {
        memset(scope, 0, sizeof scope);
        for (size_t j = 0; j < n; j++) {
            scope[j] = (uint8_t)('a' + (j + n) % 26);
        }
        sprig__vloc l = {
            'd',          "db.1", (const char *)scope, {buf + 3, (n * 7) % 20},
            {buf + 5, n}, false};
        sprig_bytes body = {buf + n, 64 - n - (n % 3)};
        uint8_t flags = (uint8_t)(SPRIG__CF_CRC | (n & 1));
        uint8_t f[4] = {flags, 'd', 0, (uint8_t)l.id.len};
        uint32_t c = sprig__crc32c_update(0, f, 4);
        c = sprig__crc32c_update(c, scope, n + 1);
        c = sprig__crc32c_update(c, l.id.data, l.id.len);
        c = sprig__crc32c_update(c, l.hdr.data, l.hdr.len);
        c = sprig__crc32c_update(c, body.data, body.len);
        assert_int_equal(sprig__codec_crc(&l, flags, body), c);
    }
}

int
main(void)
{
    root = tu_tmpdir("codec");
    seed = tu_seed();
    assert_true(sodium_init() >= 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_crc),
        cmocka_unit_test(test_crc_definition),
        cmocka_unit_test(test_location_bound),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_vault_keys),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed;
}
