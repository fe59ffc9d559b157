/*
 * vault.c -- the storage's master keys (codec.h): kept encrypted in
 * <storage>/vault under a vault key that never touches the data directory
 * unless the default key file is used; sealing and opening values.
 *
 * Design notes.
 *  - The vault key (32 bytes) comes from, in this order: the caller's
 *    keystore (sprig_storage_options.keystore), a passphrase through
 *    argon2id (vault_passphrase; salt and limits stored in the vault
 *    file), or a key file (vault_key_file, default <storage>/vault.key:
 *    64 hex digits, created mode 0600; one others may read is refused).
 *  - The file: "SPRIGVK1", kdf u8 (0 raw key, 1 argon2id), salt[16],
 *    opslimit u64 BE, memlimit u64 BE, nonce[24], len u32 BE, then the
 *    sealed body (XChaCha20-Poly1305, associated data = every byte before
 *    the nonce): [current id u32][n u32][hash secret 32][n x (id u32,
 *    key 32)].  A wrong key fails authentication: SPRIG_EAUTH, never
 *    garbage.  It is replaced atomically (temporary file, fsync, rename,
 *    directory fsync).
 *  - Nonces (24 bytes, XChaCha20's) are 16 random bytes chosen when the
 *    vault is opened followed by a 64-bit counter: unique under a key
 *    (two opens share a prefix with probability 2^-128) without a
 *    getrandom() call per value -- that call cost more than the cipher
 *    (1.5 us of CPU and ~7 us of wall time per 24 bytes on the loaded
 *    test machine, against 1.2 us to open 1 KB).
 *  - Master keys have ids; a sealed value starts with its key's id, so
 *    during a rotation values under the old and the new key both open.
 *    The hash secret is made once and survives rotations (revision hashes
 *    of encrypted collections stay valid).
 *  - Threads: the keys are read under a read lock (every seal and open),
 *    changed under the write lock (rotation).
 */
#include "codec.h"
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "SPRIGVK1"
#define KEYS_MAX 8
#define HDR_LEN (8 + 1 + 16 + 8 + 8)
#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG crypto_aead_xchacha20poly1305_ietf_ABYTES

typedef struct mkey {
    uint32_t id;
    uint8_t k[32];
} mkey;

struct sprig__vault {
    pthread_rwlock_t lock;
    char *file;
    uint8_t hdr[HDR_LEN]; /* magic, kdf, salt, limits */
    uint8_t vkey[32];
    uint8_t hash_root[32];
    uint32_t cur;
    size_t n;
    mkey keys[KEYS_MAX];
    /* nonces: 16 random bytes chosen at open, then a 64-bit counter */
    uint8_t nonce_prefix[16];
    atomic_uint_fast64_t nonce_ctr;
};

bool
sprig__vault_exists(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/vault", dir);
    return access(p, F_OK) == 0;
}

/* ---- the vault key ------------------------------------------------------ */

static int
key_file_read(const char *path, uint8_t key[32])
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return sprig__err(SPRIG_EAUTH,
                          "cannot read the vault key file '%s': %s", path,
                          strerror(errno));
    }
    char hex[80];
    ssize_t n = fstat(fd, &sb) == 0 ? read(fd, hex, sizeof hex - 1) : -1;
    close(fd);
    if (n >= 0 && (sb.st_mode & 077)) {
        return sprig__err(SPRIG_EPERM,
                          "the vault key file '%s' may be read by others "
                          "(mode %03o): chmod 600 it",
                          path, (unsigned)(sb.st_mode & 0777));
    }
    size_t got = 0;
    hex[n > 0 ? n : 0] = 0;
    if (n < 64 || sodium_hex2bin(key, 32, hex, (size_t)n, " \n", &got, NULL) ||
        got != 32) {
        return sprig__err(SPRIG_EAUTH,
                          "the vault key file '%s' does not hold a key "
                          "(64 hex digits)",
                          path);
    }
    return SPRIG_OK;
}

static int
key_file_create(const char *path, uint8_t key[32])
{
    char hex[66];
    randombytes_buf(key, 32);
    sodium_bin2hex(hex, sizeof hex, key, 32);
    hex[64] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, hex, 65) == 65 && fsync(fd) == 0;
    int e = errno;
    if (fd >= 0) {
        close(fd);
    }
    sodium_memzero(hex, sizeof hex);
    return ok ? SPRIG_OK
              : sprig__err(SPRIG_EIO,
                           "cannot create the vault key file '%s': %s", path,
                           strerror(e));
}

/* The vault key for a raw-key vault (kdf 0). */
static int
raw_key(const char *dir, const sprig_storage_options *o, bool create,
        uint8_t key[32])
{
    if (o->keystore && o->keystore->vault_key) {
        int rc = o->keystore->vault_key(o->keystore->udata, create, key);
        return rc ? sprig__err(rc < 0 ? rc : SPRIG_EAUTH,
                               "the keystore gave no vault key (%d)", rc)
                  : SPRIG_OK;
    }
    char p[4096];
    if (o->vault_key_file) {
        snprintf(p, sizeof p, "%s", o->vault_key_file);
    } else {
        snprintf(p, sizeof p, "%s/vault.key", dir);
    }
    if (create && access(p, F_OK) != 0) {
        return key_file_create(p, key);
    }
    return key_file_read(p, key);
}

/* hdr: magic, kdf, salt, limits; for a new vault (salt made here). */
static void
new_header(sprig__vault *v, bool pass)
{
    uint8_t *h = v->hdr;
    memcpy(h, MAGIC, 8);
    h[8] = pass ? 1 : 0;
    randombytes_buf(h + 9, 16);
    sprig__put_u64be(h + 25, pass ? crypto_pwhash_OPSLIMIT_INTERACTIVE : 0);
    sprig__put_u64be(h + 33, pass ? crypto_pwhash_MEMLIMIT_INTERACTIVE : 0);
}

/* The vault key, per the header's kdf. */
static int
vault_key(sprig__vault *v, const char *dir, const sprig_storage_options *o,
          bool create)
{
    if (v->hdr[8] == 0) {
        return raw_key(dir, o, create, v->vkey);
    }
    if (!o->vault_passphrase) {
        return sprig__err(SPRIG_EAUTH, "the vault is locked by a passphrase "
                                       "and none was given");
    }
    uint64_t ops = sprig__get_u64be(v->hdr + 25);
    uint64_t mem = sprig__get_u64be(v->hdr + 33);
    /* The header is authenticated only after argon2id ran on its limits:
     * a damaged one must not buy minutes of work or gigabytes (found by
     * fuzz_vault), nor fail as SPRIG_ENOMEM below argon2id's minimum. */
    if (ops < crypto_pwhash_OPSLIMIT_MIN ||
        ops > crypto_pwhash_OPSLIMIT_SENSITIVE ||
        mem < crypto_pwhash_MEMLIMIT_MIN ||
        mem > crypto_pwhash_MEMLIMIT_SENSITIVE) {
        return sprig__err(SPRIG_ECORRUPT,
                          "the vault's argon2id limits (%llu passes, %llu "
                          "bytes) are out of range: the vault file is damaged",
                          (unsigned long long)ops, (unsigned long long)mem);
    }
    if (crypto_pwhash(v->vkey, 32, o->vault_passphrase,
                      strlen(o->vault_passphrase), v->hdr + 9, ops, (size_t)mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        return sprig__err(SPRIG_ENOMEM, "argon2id ran out of memory");
    }
    return SPRIG_OK;
}

/* ---- the file ------------------------------------------------------------ */

static int
body_parse(sprig__vault *v, const uint8_t *b, size_t n)
{
    if (n < 40) {
        return sprig__err(SPRIG_ECORRUPT, "the vault is truncated");
    }
    v->cur = sprig__get_u32be(b);
    uint32_t k = sprig__get_u32be(b + 4);
    if (k == 0 || k > KEYS_MAX || n != 40 + (size_t)k * 36) {
        return sprig__err(SPRIG_ECORRUPT, "the vault holds %u keys", k);
    }
    memcpy(v->hash_root, b + 8, 32);
    v->n = k;
    bool cur = false;
    for (uint32_t i = 0; i < k; i++) {
        v->keys[i].id = sprig__get_u32be(b + 40 + i * 36);
        memcpy(v->keys[i].k, b + 44 + i * 36, 32);
        cur = cur || v->keys[i].id == v->cur;
    }
    return cur ? SPRIG_OK
               : sprig__err(SPRIG_ECORRUPT, "the vault lacks its current key");
}

static int
file_load(sprig__vault *v, const char *dir, const sprig_storage_options *o)
{
    uint8_t f[HDR_LEN + NONCE + 4 + 40 + KEYS_MAX * 36 + TAG];
    FILE *fp = fopen(v->file, "rb");
    size_t n = fp ? fread(f, 1, sizeof f, fp) : 0;
    if (fp) {
        fclose(fp);
    }
    if (!fp) {
        return sprig__err(SPRIG_EIO, "cannot read '%s': %s", v->file,
                          strerror(errno));
    }
    size_t at = HDR_LEN + NONCE + 4;
    if (n < at || memcmp(f, MAGIC, 8) != 0 || f[8] > 1 ||
        n != at + sprig__get_u32be(f + HDR_LEN + NONCE)) {
        return sprig__err(SPRIG_ECORRUPT, "'%s' is not a Sprig vault", v->file);
    }
    memcpy(v->hdr, f, HDR_LEN);
    int rc = vault_key(v, dir, o, false);
    uint8_t body[40 + KEYS_MAX * 36];
    unsigned long long bn = 0;
    if (rc == 0 && (n - at < TAG || n - at - TAG > sizeof body ||
                    crypto_aead_xchacha20poly1305_ietf_decrypt(
                        body, &bn, NULL, f + at, n - at, f, HDR_LEN,
                        f + HDR_LEN, v->vkey) != 0)) {
        rc = sprig__err(SPRIG_EAUTH,
                        "the vault key does not open this storage's vault "
                        "(wrong key file, keystore key or passphrase)");
    }
    rc = rc ? rc : body_parse(v, body, (size_t)bn);
    sodium_memzero(body, sizeof body);
    return rc;
}

static int
file_write(sprig__vault *v)
{
    uint8_t body[40 + KEYS_MAX * 36];
    uint8_t f[HDR_LEN + NONCE + 4 + sizeof body + TAG];
    size_t bn = 40 + v->n * 36;
    sprig__put_u32be(body, v->cur);
    sprig__put_u32be(body + 4, (uint32_t)v->n);
    memcpy(body + 8, v->hash_root, 32);
    for (size_t i = 0; i < v->n; i++) {
        sprig__put_u32be(body + 40 + i * 36, v->keys[i].id);
        memcpy(body + 44 + i * 36, v->keys[i].k, 32);
    }
    memcpy(f, v->hdr, HDR_LEN);
    randombytes_buf(f + HDR_LEN, NONCE);
    sprig__put_u32be(f + HDR_LEN + NONCE, (uint32_t)(bn + TAG));
    size_t at = HDR_LEN + NONCE + 4;
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        f + at, NULL, body, bn, f, HDR_LEN, NULL, f + HDR_LEN, v->vkey);
    sodium_memzero(body, sizeof body);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", v->file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = at + bn + TAG;
    bool ok = fd >= 0 && write(fd, f, len) == (ssize_t)len && fsync(fd) == 0;
    int e = errno;
    if (fd >= 0) {
        close(fd);
    }
    ok = ok && rename(tmp, v->file) == 0;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", v->file);
    *strrchr(dir, '/') = 0;
    if (!ok || sprig__sync_dir(dir) != 0) {
        unlink(tmp);
        return sprig__err(SPRIG_EIO, "cannot write '%s': %s", v->file,
                          strerror(ok ? errno : e));
    }
    return SPRIG_OK;
}

static int
vault_create(sprig__vault *v, const char *dir, const sprig_storage_options *o)
{
    bool pass = !(o->keystore && o->keystore->vault_key) && o->vault_passphrase;
    new_header(v, pass);
    int rc = vault_key(v, dir, o, true);
    if (rc) {
        return rc;
    }
    randombytes_buf(v->hash_root, 32);
    v->n = 1;
    v->cur = v->keys[0].id = 1;
    randombytes_buf(v->keys[0].k, 32);
    return file_write(v);
}

int
sprig__vault_open(const char *dir, const sprig_storage_options *o, bool create,
                  sprig__vault **out)
{
    *out = NULL;
    bool exists = sprig__vault_exists(dir);
    if (!exists && !create) {
        return SPRIG_ENOTFOUND;
    }
    sprig__vault *v = sprig__calloc(1, sizeof *v);
    size_t fl = strlen(dir) + 8;
    char *file = v ? sprig__malloc(fl) : NULL;
    if (!file) {
        sprig__free(v);
        return sprig__err(SPRIG_ENOMEM, "out of memory opening the vault");
    }
    snprintf(file, fl, "%s/vault", dir);
    v->file = file;
    randombytes_buf(v->nonce_prefix, sizeof v->nonce_prefix);
    atomic_init(&v->nonce_ctr, 0);
    pthread_rwlock_init(&v->lock, NULL);
    int rc = exists ? file_load(v, dir, o) : vault_create(v, dir, o);
    if (rc) {
        sprig__vault_free(v);
        return rc;
    }
    *out = v;
    return SPRIG_OK;
}

void
sprig__vault_free(sprig__vault *v)
{
    if (!v) {
        return;
    }
    pthread_rwlock_destroy(&v->lock);
    sprig__free(v->file);
    sodium_memzero(v, sizeof *v);
    sprig__free(v);
}

/* ---- sealing --------------------------------------------------------------
 */

static const mkey *
find_key(const sprig__vault *v, uint32_t id)
{
    for (size_t i = 0; i < v->n; i++) {
        if (v->keys[i].id == id) {
            return &v->keys[i];
        }
    }
    return NULL;
}

void
sprig__vault_seal(sprig__vault *v, const uint8_t *ad, size_t adlen,
                  const uint8_t *m, size_t n, uint8_t *out)
{
    uint64_t ctr = atomic_fetch_add(&v->nonce_ctr, 1);
    pthread_rwlock_rdlock(&v->lock);
    const mkey *k = find_key(v, v->cur);
    sprig__put_u32be(out, k->id);
    memcpy(out + 4, v->nonce_prefix, 16);
    sprig__put_u64be(out + 4 + 16, ctr);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + 4 + NONCE, NULL, m, n, ad,
                                               adlen, NULL, out + 4, k->k);
    pthread_rwlock_unlock(&v->lock);
}

int
sprig__vault_unseal(sprig__vault *v, const uint8_t *ad, size_t adlen,
                    const uint8_t *c, size_t n, uint8_t *out)
{
    if (n < SPRIG__SEAL_OVERHEAD) {
        return sprig__err(SPRIG_ECORRUPT, "an encrypted value is truncated");
    }
    uint32_t id = sprig__get_u32be(c);
    pthread_rwlock_rdlock(&v->lock);
    const mkey *k = find_key(v, id);
    int bad = !k || crypto_aead_xchacha20poly1305_ietf_decrypt(
                        out, NULL, NULL, c + 4 + NONCE, n - 4 - NONCE, ad,
                        adlen, c + 4, k->k) != 0;
    pthread_rwlock_unlock(&v->lock);
    if (!k) {
        return sprig__err(SPRIG_EAUTH,
                          "a value was encrypted under master key %u, which "
                          "this storage's vault does not hold",
                          id);
    }
    return bad ? sprig__err(SPRIG_EAUTH,
                            "a stored value failed authentication (altered, "
                            "or moved from another place)")
               : SPRIG_OK;
}

void
sprig__vault_hash_key(sprig__vault *v, const char *dir_name, uint8_t out[16])
{
    static const char ctx[] = "sprig keyed revision hash v1:";
    crypto_generichash_state s;
    crypto_generichash_init(&s, v->hash_root, 32, 16);
    crypto_generichash_update(&s, (const uint8_t *)ctx, sizeof ctx - 1);
    crypto_generichash_update(&s, (const uint8_t *)dir_name, strlen(dir_name));
    crypto_generichash_final(&s, out, 16);
}

void
sprig__vault_fingerprint(sprig__vault *v, uint8_t out[16])
{
    static const char ctx[] = "sprig vault fingerprint v1:";
    crypto_generichash_state s;
    pthread_rwlock_rdlock(&v->lock);
    crypto_generichash_init(&s, v->hash_root, 32, 16);
    crypto_generichash_update(&s, (const uint8_t *)ctx, sizeof ctx - 1);
    for (size_t i = 0; i < v->n; i++) {
        uint8_t id[4];
        sprig__put_u32be(id, v->keys[i].id);
        crypto_generichash_update(&s, id, 4);
        crypto_generichash_update(&s, v->keys[i].k, 32);
    }
    pthread_rwlock_unlock(&v->lock);
    crypto_generichash_final(&s, out, 16);
}

/* ---- rotation ---------------------------------------------------------------
 */

uint32_t
sprig__vault_current(sprig__vault *v)
{
    pthread_rwlock_rdlock(&v->lock);
    uint32_t c = v->cur;
    pthread_rwlock_unlock(&v->lock);
    return c;
}

size_t
sprig__vault_keys(sprig__vault *v)
{
    pthread_rwlock_rdlock(&v->lock);
    size_t n = v->n;
    pthread_rwlock_unlock(&v->lock);
    return n;
}

int
sprig__vault_add_key(sprig__vault *v)
{
    pthread_rwlock_wrlock(&v->lock);
    int rc = SPRIG_OK;
    if (v->n == KEYS_MAX) {
        rc = sprig__err(SPRIG_EFULL,
                        "the vault holds %d keys: finish the "
                        "rotation in progress first",
                        KEYS_MAX);
    } else {
        mkey *k = &v->keys[v->n++];
        k->id = v->cur + 1;
        randombytes_buf(k->k, 32);
        v->cur = k->id;
        rc = file_write(v);
        if (rc) {
            v->n--;
            v->cur--;
        }
    }
    pthread_rwlock_unlock(&v->lock);
    return rc;
}

int
sprig__vault_drop_old(sprig__vault *v)
{
    pthread_rwlock_wrlock(&v->lock);
    const mkey *k = find_key(v, v->cur);
    mkey keep = *k;
    size_t n = v->n;
    mkey old[KEYS_MAX];
    memcpy(old, v->keys, sizeof old);
    v->keys[0] = keep;
    v->n = 1;
    int rc = file_write(v);
    if (rc) {
        memcpy(v->keys, old, sizeof old);
        v->n = n;
    }
    sodium_memzero(old, sizeof old);
    sodium_memzero(&keep, sizeof keep);
    pthread_rwlock_unlock(&v->lock);
    return rc;
}
