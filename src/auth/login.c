/*
 * login.c -- authentication (src/auth): argon2id passwords, token
 * challenge-response, assume-identity.
 *
 * Passwords: libsodium's crypto_pwhash_str (argon2id); the stored string
 * carries its own cost, so a cost change applies to hashes made after it.
 * At most `max_hashing` computations run at once; past that a login is
 * refused with SPRIG_EBUSY at once rather than queued, so a flood of logins
 * holds at most max_hashing x memlimit of memory and max_hashing cores.
 * An unknown user is verified against a dummy hash, so the answer takes as
 * long and reads the same ("authentication failed").
 *
 * Tokens: the client holds a random 32-byte secret; the records hold its
 * key K = BLAKE2b-256(secret).  The server hands out a challenge (32
 * random bytes, its time); the client answers with
 * BLAKE2b-256 keyed by K over "sprig-token/1" || id || nonce ||
 * server_ms || client_ms.  A challenge answers one response (then it is
 * forgotten: a replay finds none), must be younger than the window, and
 * the client's time must be within the window of the server's.
 */
#include "auth/auth_int.h"

#include <sodium.h>
#include <time.h>

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
failed(void)
{
    return sprig__err(SPRIG_EPERM, "authentication failed");
}

int
sprig_auth_login_password(sprig_auth *a, const char *user, const char *password,
                          sprig_identity **out)
{
    if (!a || !user || !password || !out) {
        return sprig__err(SPRIG_EINVAL, "sprig_auth_login_password: NULL "
                                        "argument");
    }
    *out = NULL;
    if (atomic_fetch_add(&a->hashing, 1) >= a->o.max_hashing) {
        atomic_fetch_sub(&a->hashing, 1);
        return sprig__err(SPRIG_EBUSY,
                          "too many logins at once (limit %u); "
                          "try again",
                          a->o.max_hashing);
    }
    char hash[crypto_pwhash_STRBYTES];
    int rc = sprig__check_coll_name("user", user) == 0
                 ? sprig__records_password(a, user, hash, sizeof hash)
                 : SPRIG_ENOTFOUND;
    bool known = rc == 0 && hash[0];
    if (rc == 0 || rc == SPRIG_ENOTFOUND) {
        int v = crypto_pwhash_str_verify(known ? hash : a->dummy, password,
                                         strlen(password));
        rc = known && v == 0 ? SPRIG_OK : failed();
    }
    atomic_fetch_sub(&a->hashing, 1);
    sodium_memzero(hash, sizeof hash);
    rc = rc ? rc : sprig__identity_new(a, false, user, out);
    return rc == SPRIG_ENOTFOUND ? failed() : rc;
}

int
sprig_auth_token_challenge(sprig_auth *a, uint8_t nonce[32],
                           uint64_t *server_ms)
{
    if (!a || !nonce || !server_ms) {
        return sprig__err(SPRIG_EINVAL, "sprig_auth_token_challenge: NULL "
                                        "argument");
    }
    randombytes_buf(nonce, 32);
    *server_ms = now_ms();
    pthread_mutex_lock(&a->lock);
    sprig__challenge *c = &a->ch[a->ch_next++ % SPRIG__CHALLENGES];
    memcpy(c->nonce, nonce, 32);
    c->ms = *server_ms;
    c->live = true;
    pthread_mutex_unlock(&a->lock);
    return SPRIG_OK;
}

static void
be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* The MAC of a response under key `key`. */
static void
mac_of(const uint8_t key[32], const char *id, const uint8_t nonce[32],
       uint64_t server_ms, uint64_t client_ms, uint8_t mac[32])
{
    static const char tag[] = "sprig-token/1";
    uint8_t t[16];
    be64(t, server_ms);
    be64(t + 8, client_ms);
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, 32, 32);
    crypto_generichash_update(&st, (const uint8_t *)tag, sizeof tag - 1);
    crypto_generichash_update(&st, (const uint8_t *)id, strlen(id));
    crypto_generichash_update(&st, nonce, 32);
    crypto_generichash_update(&st, t, sizeof t);
    crypto_generichash_final(&st, mac, 32);
}

int
sprig_auth_token_response(const char *id, const char *secret,
                          const uint8_t nonce[32], uint64_t server_ms,
                          uint64_t client_ms, uint8_t mac[32])
{
    uint8_t sec[32], key[32];
    size_t n = 0;
    if (!id || !secret || !nonce || !mac ||
        strlen(secret) != SPRIG_TOKEN_SECRET_LEN ||
        sodium_hex2bin(sec, 32, secret, SPRIG_TOKEN_SECRET_LEN, NULL, &n,
                       NULL) != 0 ||
        n != 32) {
        return sprig__err(SPRIG_EINVAL, "a token secret is %d hex digits",
                          SPRIG_TOKEN_SECRET_LEN);
    }
    crypto_generichash(key, 32, sec, 32, NULL, 0);
    mac_of(key, id, nonce, server_ms, client_ms, mac);
    sodium_memzero(sec, sizeof sec);
    sodium_memzero(key, sizeof key);
    return SPRIG_OK;
}

/* Take the challenge (nonce, server_ms): true when it was live and young
 * enough.  It is forgotten either way: one response per challenge. */
static bool
take_challenge(sprig_auth *a, const uint8_t nonce[32], uint64_t server_ms,
               uint64_t now)
{
    bool ok = false;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < SPRIG__CHALLENGES; i++) {
        sprig__challenge *c = &a->ch[i];
        if (c->live && c->ms == server_ms &&
            sodium_memcmp(c->nonce, nonce, 32) == 0) {
            c->live = false;
            ok = now >= c->ms && now - c->ms <= a->o.token_window_ms;
            break;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return ok;
}

int
sprig_auth_login_token(sprig_auth *a, const char *id, const uint8_t nonce[32],
                       uint64_t server_ms, uint64_t client_ms,
                       const uint8_t mac[32], sprig_identity **out)
{
    if (!a || !id || !nonce || !mac || !out) {
        return sprig__err(SPRIG_EINVAL, "sprig_auth_login_token: NULL "
                                        "argument");
    }
    *out = NULL;
    uint64_t now = now_ms();
    uint64_t skew = client_ms > now ? client_ms - now : now - client_ms;
    if (!take_challenge(a, nonce, server_ms, now)) {
        return sprig__err(SPRIG_EPERM, "authentication failed: no such "
                                       "challenge (answered already, or "
                                       "stale)");
    }
    if (skew > a->o.token_window_ms) {
        return sprig__err(SPRIG_EPERM,
                          "authentication failed: the client's "
                          "time is %llu ms off",
                          (unsigned long long)skew);
    }
    char user[SPRIG_NAME_MAX + 1];
    uint8_t key[32], want[32];
    int rc = sprig__records_token(a, id, user, sizeof user, key);
    if (rc == 0) {
        mac_of(key, id, nonce, server_ms, client_ms, want);
        rc = sodium_memcmp(want, mac, 32) == 0 ? 0 : failed();
    }
    sodium_memzero(key, sizeof key);
    rc = rc ? rc : sprig__identity_new(a, false, user, out);
    return rc == SPRIG_ENOTFOUND ? failed() : rc;
}

int
sprig_auth_assume(sprig_auth *a, sprig_identity *as, const char *kind,
                  const char *name, sprig_identity **out)
{
    bool role = kind && strcmp(kind, "role") == 0;
    if (!a || !out || !kind || (!role && strcmp(kind, "user") != 0)) {
        return sprig__err(SPRIG_EINVAL, "assume: the kind is 'user' or "
                                        "'role'");
    }
    *out = NULL;
    int rc = sprig__check_coll_name(kind, name);
    rc = rc ? rc : sprig__records_may(as, "identity.assume", kind, name);
    return rc ? rc : sprig__identity_new(a, role, name, out);
}
