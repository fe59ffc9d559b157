/*
 * fuzz_vault.c -- libFuzzer harness over the vault file (src/local/vault.c:
 * <storage>/vault, the storage's master keys sealed under the vault key),
 * read by every open of an encrypted storage.  The file is written to a
 * directory on /dev/shm and opened with sprig__vault_open, the way a
 * storage opens it, with a keystore giving a fixed vault key and a
 * passphrase (so both key derivations are reachable).
 *
 * Input: [mode u8][bytes...].  Even mode: `bytes` are the whole file --
 * what a damaged or forged file gives before authentication (the magic,
 * the key derivation and its argon2id limits, the length).  Odd mode:
 * `bytes` are the sealed body (current key id, key count, hash secret,
 * keys), sealed here under the keystore's key with a well-formed header,
 * so the body parser behind the authentication is reached too.
 *
 * Checks: never a crash; an open fails with SPRIG_ECORRUPT or SPRIG_EAUTH
 * and a detail message, or succeeds with a vault that works: a
 * value sealed under its current key opens again (and fails once altered),
 * a rotation's new key seals and opens, and the file written then opens
 * again and still opens the first value.  A header asking argon2id for
 * more than the vault accepts must be refused before argon2id runs (found:
 * limits were checked only against 64 passes and 4 GiB, and limits below
 * argon2id's minimum failed as SPRIG_ENOMEM).  No allocation left live.
 */
#include "core/core.h"
#include "local/codec.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR_LEN (8 + 1 + 16 + 8 + 8)
#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG crypto_aead_xchacha20poly1305_ietf_ABYTES

static char dir[64];
static char file[96];
static const uint8_t vkey[32] = {7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

static int
ks_key(void *udata, bool create, uint8_t key[32])
{
    (void)udata;
    (void)create;
    memcpy(key, vkey, 32);
    return 0;
}

static const sprig_keystore keystore = {.vault_key = ks_key};

static void
cleanup(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/vault.tmp", dir);
    unlink(p);
    unlink(file);
    rmdir(dir);
}

static void
setup(void)
{
    snprintf(dir, sizeof dir, "/dev/shm/sprig-fuzz-vault-XXXXXX");
    if (!mkdtemp(dir)) {
        abort();
    }
    snprintf(file, sizeof file, "%s/vault", dir);
    atexit(cleanup);
}

static void
put_file(const uint8_t *b, size_t n)
{
    FILE *f = fopen(file, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        abort();
    }
}

/* A well-formed raw-key file around `body`, sealed under vkey. */
static void
put_sealed(const uint8_t *body, size_t n)
{
    static uint8_t f[HDR_LEN + NONCE + 4 + 4096 + TAG];
    if (n > 4096) {
        n = 4096;
    }
    memset(f, 0, HDR_LEN + NONCE);
    memcpy(f, "SPRIGVK1", 8);
    size_t at = HDR_LEN + NONCE + 4;
    sprig__put_u32be(f + HDR_LEN + NONCE, (uint32_t)(n + TAG));
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        f + at, NULL, body, n, f, HDR_LEN, NULL, f + HDR_LEN, vkey);
    put_file(f, at + n + TAG);
}

/* Seal a value under the current key; it must open, and fail altered. */
static void
roundtrip(sprig__vault *v, const uint8_t *m, size_t n, uint8_t *sealed)
{
    uint8_t back[64];
    sprig__vault_seal(v, (const uint8_t *)"ad", 2, m, n, sealed);
    if (sprig__vault_unseal(v, (const uint8_t *)"ad", 2, sealed,
                            n + SPRIG__SEAL_OVERHEAD, back) != 0 ||
        memcmp(back, m, n) != 0) {
        abort();
    }
    sealed[n + SPRIG__SEAL_OVERHEAD - 1] ^= 1;
    if (sprig__vault_unseal(v, (const uint8_t *)"ad", 2, sealed,
                            n + SPRIG__SEAL_OVERHEAD, back) != SPRIG_EAUTH) {
        abort();
    }
    sealed[n + SPRIG__SEAL_OVERHEAD - 1] ^= 1;
}

/* An opened vault must work, rotate, and open again as written. */
static void
exercise(sprig__vault *v, const sprig_storage_options *o)
{
    static const uint8_t msg[] = "a value under the vault";
    uint8_t first[sizeof msg + SPRIG__SEAL_OVERHEAD];
    uint8_t second[sizeof msg + SPRIG__SEAL_OVERHEAD];
    uint8_t back[sizeof msg];
    size_t keys = sprig__vault_keys(v);
    if (keys < 1 || keys > 8) {
        abort();
    }
    roundtrip(v, msg, sizeof msg, first);
    int rc = sprig__vault_add_key(v);
    if (rc == 0) {
        roundtrip(v, msg, sizeof msg, second);
    } else if (rc != SPRIG_EFULL || keys != 8) {
        abort();
    }
    sprig__vault *w = NULL;
    if (sprig__vault_open(dir, o, false, &w) != 0 ||
        sprig__vault_current(w) != sprig__vault_current(v) ||
        sprig__vault_unseal(w, (const uint8_t *)"ad", 2, first, sizeof first,
                            back) != 0 ||
        (rc == 0 && sprig__vault_unseal(w, (const uint8_t *)"ad", 2, second,
                                        sizeof second, back) != 0)) {
        abort();
    }
    sprig__vault_free(w);
}

/* argon2id limits that would take long: skipped (the check before is what
 * a damaged header must meet, and it is exercised by every input). */
static bool
costly(const uint8_t *data, size_t size)
{
    if (size < HDR_LEN || data[8] != 1) {
        return false;
    }
    uint64_t ops = sprig__get_u64be(data + 25);
    uint64_t mem = sprig__get_u64be(data + 33);
    return ops <= crypto_pwhash_OPSLIMIT_SENSITIVE &&
           mem <= crypto_pwhash_MEMLIMIT_SENSITIVE &&
           (ops > 2 || mem > (1u << 20));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        if (sodium_init() < 0) {
            abort();
        }
        setup();
        once = true;
    }
    if (size < 1 || (!(data[0] & 1) && costly(data + 1, size - 1))) {
        return 0;
    }
    long live = sprig__alloc_live();
    if (data[0] & 1) {
        put_sealed(data + 1, size - 1);
    } else {
        put_file(data + 1, size - 1);
    }
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.keystore = &keystore;
    o.vault_passphrase = "fuzz";
    sprig__vault *v = NULL;
    int rc = sprig__vault_open(dir, &o, false, &v);
    if (rc == 0) {
        exercise(v, &o);
    } else if ((rc != SPRIG_ECORRUPT && rc != SPRIG_EAUTH) ||
               !sprig_errmsg()[0]) {
        fprintf(stderr, "fuzz_vault: open gave %d '%s'\n", rc, sprig_errmsg());
        abort();
    }
    sprig__vault_free(v);
    if (sprig__alloc_live() != live) {
        abort();
    }
    return 0;
}
