/*
 * test_auth.c -- the permission engine (src/auth) on a real local storage:
 *  - patterns: segment-wise matching, '*' inside a segment, a shorter
 *    pattern covering what is below it (resources and the action tree),
 *    malformed patterns refused;
 *  - admin records: unique names (a second create is SPRIG_EEXIST), groups
 *    and roles that must exist, statements, tokens; changing them as an
 *    identity is checked ("user.create" etc.) and a refused change changes
 *    nothing;
 *  - passwords: a right one gives the user's identity; wrong passwords,
 *    unknown users and token-only users all get the same SPRIG_EPERM; the
 *    bound on concurrent hashing refuses (SPRIG_EBUSY) past the limit;
 *  - tokens: a right response logs in; a replayed response, a stale
 *    challenge, a client time off by more than the window, a wrong secret
 *    and a deleted token are refused;
 *  - effective permissions: groups + roles' groups, refreshed when the
 *    records change (removed from a group mid-session: refused on the next
 *    check); a deleted user has none; assume-identity gated;
 *  - the records on disk hold no password and no token secret.
 */
#include "testutil.h"

#include "auth/auth_int.h"
#include "sprig/auth.h"

#include <sodium.h>

static const char *dir;

static sprig_storage *
open_st(void)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    sprig_storage *st = NULL;
    SPRIG_OK_(sprig_storage_open(&so, &st));
    return st;
}

static sprig_auth *
open_auth(sprig_storage *st)
{
    sprig_auth_options o;
    sprig_auth_options_min(&o);
    sprig_auth *a = NULL;
    SPRIG_OK_(sprig_auth_open(st, &o, &a));
    return a;
}

static void
test_patterns(void **state)
{
    (void)state;
    assert_true(sprig__pattern_match("sprig", "sprig.db.app"));
    assert_true(sprig__pattern_match("sprig.db.app", "sprig.db.app"));
    assert_true(sprig__pattern_match("sprig.db.app", "sprig.db.app.keyvalue"));
    assert_false(sprig__pattern_match("sprig.db.app", "sprig.db.apple"));
    assert_false(sprig__pattern_match("sprig.db.app.keyvalue", "sprig.db.app"));
    assert_true(sprig__pattern_match("sprig.db.app*", "sprig.db.apple.x"));
    assert_true(
        sprig__pattern_match("sprig.db.*.pubsub", "sprig.db.x.pubsub.t"));
    assert_false(
        sprig__pattern_match("sprig.db.*.pubsub", "sprig.db.x.keyvalue"));
    assert_true(sprig__pattern_match("*", "anything.at.all"));
    assert_true(sprig__pattern_match("a*c", "abbbc"));
    assert_false(sprig__pattern_match("a*c", "abbbd"));
    assert_true(sprig__pattern_match("kv", "kv.get"));
    assert_false(sprig__pattern_match("kv.get", "kv.set"));
    assert_false(sprig__pattern_match("document", "documents.get"));
    sprig__stmts s = {0};
    SPRIG_OK_(sprig__stmts_add(&s, "document.get,kv", "sprig.db.app"));
    assert_true(sprig__stmts_allow(&s, "kv.set", "sprig.db.app.keyvalue.n.k"));
    assert_true(sprig__stmts_allow(&s, "document.get", "sprig.db.app"));
    assert_false(sprig__stmts_allow(&s, "document.list", "sprig.db.app"));
    assert_false(sprig__stmts_allow(&s, "kv.get", "sprig.db.other"));
    sprig__stmts_free(&s);
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__pattern_check("sprig..db", "r"));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__pattern_check("sprig.d b", "r"));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__pattern_check("", "r"));
    SPRIG_OK_(sprig__pattern_check("sprig.db.*.collection.c%2E", "r"));
}

static void
test_records_and_login(void **state)
{
    (void)state;
    sprig_storage *st = open_st();
    sprig_auth *a = open_auth(st);
    SPRIG_OK_(sprig_auth_user_create(a, NULL, "alice", "correct horse"));
    SPRIG_EXPECT(SPRIG_EEXIST, sprig_auth_user_create(a, NULL, "alice", "x"));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_auth_user_create(a, NULL, "a b", "x"));
    SPRIG_OK_(sprig_auth_user_create(a, NULL, "tokenonly", NULL));
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_auth_user_group(a, NULL, "alice", "nogroup", true));
    SPRIG_OK_(sprig_auth_group_create(a, NULL, "readers"));
    SPRIG_EXPECT(SPRIG_EEXIST, sprig_auth_group_create(a, NULL, "readers"));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_auth_group_grant(a, NULL, "readers",
                                                      "document.get", "a..b"));
    SPRIG_OK_(sprig_auth_group_grant(a, NULL, "readers", "document.get,kv.get",
                                     "sprig.db.app"));
    SPRIG_OK_(sprig_auth_user_group(a, NULL, "alice", "readers", true));

    sprig_identity *id = NULL;
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_auth_login_password(a, "alice", "wrong", &id));
    char wrong_msg[256];
    snprintf(wrong_msg, sizeof wrong_msg, "%s", sprig_errmsg());
    assert_null(id);
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_auth_login_password(a, "nobody", "correct horse", &id));
    assert_string_equal(sprig_errmsg(), wrong_msg); /* the same answer */
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_auth_login_password(a, "tokenonly", "", &id));
    assert_string_equal(sprig_errmsg(), wrong_msg);
    assert_null(strstr(wrong_msg, "correct horse"));
    SPRIG_OK_(sprig_auth_login_password(a, "alice", "correct horse", &id));
    assert_string_equal(sprig_identity_name(id), "alice");
    SPRIG_OK_(sprig_identity_check(id, "document.get",
                                   "sprig.db.app.collection.c.document.x"));
    SPRIG_EXPECT(SPRIG_EPERM, sprig_identity_check(id, "kv.set",
                                                   "sprig.db.app.keyvalue..k"));
    assert_non_null(strstr(sprig_errmsg(), "kv.set"));

    /* a change made as alice is checked, and a refused one changes nothing */
    SPRIG_EXPECT(SPRIG_EPERM, sprig_auth_user_create(a, id, "mallory", "pw"));
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_auth_group_grant(a, id, "readers", "*", "sprig"));
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_identity_check(id, "database.delete", "sprig.db.app"));
    sprig_identity *m = NULL;
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_auth_login_password(a, "mallory", "pw", &m));

    /* removed from the group mid-session: refused on the next check */
    SPRIG_OK_(sprig_auth_user_group(a, NULL, "alice", "readers", false));
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_identity_check(id, "document.get", "sprig.db.app.x"));
    /* a role's groups count; the role can be assumed only when granted */
    SPRIG_OK_(sprig_auth_role_create(a, NULL, "ops"));
    SPRIG_OK_(sprig_auth_role_group(a, NULL, "ops", "readers", true));
    SPRIG_OK_(sprig_auth_user_role(a, NULL, "alice", "ops", true));
    SPRIG_OK_(sprig_identity_check(id, "kv.get", "sprig.db.app.keyvalue.n.k"));
    sprig_identity *r = NULL;
    SPRIG_EXPECT(SPRIG_EPERM, sprig_auth_assume(a, id, "role", "ops", &r));
    SPRIG_OK_(sprig_auth_group_create(a, NULL, "assumers"));
    SPRIG_OK_(sprig_auth_group_grant(a, NULL, "assumers", "identity.assume",
                                     "sprig.role.ops"));
    SPRIG_OK_(sprig_auth_user_group(a, NULL, "alice", "assumers", true));
    SPRIG_OK_(sprig_auth_assume(a, id, "role", "ops", &r));
    assert_string_equal(sprig_identity_name(r), "role:ops");
    SPRIG_OK_(sprig_identity_check(r, "kv.get", "sprig.db.app.keyvalue.n.k"));
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_auth_assume(a, id, "user", "tokenonly", &m));
    sprig_identity_release(r);

    /* a deleted user keeps nothing */
    SPRIG_OK_(sprig_auth_user_delete(a, NULL, "alice"));
    SPRIG_EXPECT(SPRIG_EPERM, sprig_identity_check(
                                  id, "kv.get", "sprig.db.app.keyvalue.n.k"));
    sprig_identity_release(id);
    sprig_auth_free(a);
    sprig_storage_close(st);
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
test_tokens(void **state)
{
    (void)state;
    sprig_storage *st = open_st();
    sprig_auth_options o;
    sprig_auth_options_min(&o);
    o.token_window_ms = 1500;
    sprig_auth *a = NULL;
    SPRIG_OK_(sprig_auth_open(st, &o, &a));
    SPRIG_OK_(sprig_auth_user_create(a, NULL, "bot", NULL));
    char id[SPRIG_TOKEN_ID_LEN + 1], secret[SPRIG_TOKEN_SECRET_LEN + 1];
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_auth_token_create(a, NULL, "ghost", id, secret));
    SPRIG_OK_(sprig_auth_token_create(a, NULL, "bot", id, secret));
    uint8_t nonce[32], mac[32];
    uint64_t sms, cms;
    sprig_identity *who = NULL;

    SPRIG_OK_(sprig_auth_token_challenge(a, nonce, &sms));
    cms = now_ms();
    SPRIG_OK_(sprig_auth_token_response(id, secret, nonce, sms, cms, mac));
    SPRIG_OK_(sprig_auth_login_token(a, id, nonce, sms, cms, mac, &who));
    assert_string_equal(sprig_identity_name(who), "bot");
    sprig_identity_release(who);
    /* the same response again: a replay */
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_auth_login_token(a, id, nonce, sms, cms, mac, &who));
    /* a client time off by more than the window */
    SPRIG_OK_(sprig_auth_token_challenge(a, nonce, &sms));
    cms = now_ms() - 60000;
    SPRIG_OK_(sprig_auth_token_response(id, secret, nonce, sms, cms, mac));
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_auth_login_token(a, id, nonce, sms, cms, mac, &who));
    /* a stale challenge */
    SPRIG_OK_(sprig_auth_token_challenge(a, nonce, &sms));
    usleep(1700 * 1000);
    cms = now_ms();
    SPRIG_OK_(sprig_auth_token_response(id, secret, nonce, sms, cms, mac));
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_auth_login_token(a, id, nonce, sms, cms, mac, &who));
    /* a wrong secret */
    char bad[SPRIG_TOKEN_SECRET_LEN + 1];
    snprintf(bad, sizeof bad, "%s", secret);
    bad[0] = bad[0] == '0' ? '1' : '0';
    SPRIG_OK_(sprig_auth_token_challenge(a, nonce, &sms));
    cms = now_ms();
    SPRIG_OK_(sprig_auth_token_response(id, bad, nonce, sms, cms, mac));
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_auth_login_token(a, id, nonce, sms, cms, mac, &who));
    /* a deleted token */
    SPRIG_OK_(sprig_auth_token_delete(a, NULL, id));
    SPRIG_OK_(sprig_auth_token_challenge(a, nonce, &sms));
    SPRIG_OK_(sprig_auth_token_response(id, secret, nonce, sms, cms, mac));
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_auth_login_token(a, id, nonce, sms, cms, mac, &who));
    assert_null(who);

    /* no secret and no password on disk: grep every file of the storage */
    SPRIG_OK_(sprig_auth_user_create(a, NULL, "carol", "Pa55-unique-phrase"));
    sprig_auth_free(a);
    sprig_storage_close(st);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "grep -r -a -q -e '%s' -e 'Pa55-unique-phrase' '%s'", secret, dir);
    assert_int_not_equal(system(cmd), 0);
}

/* The bound on hashing: with max_hashing 1, a login while another hashes
 * is refused at once. */
typedef struct hash_arg {
    sprig_auth *a;
    int rc;
    atomic_int done;
} hash_arg;

static void *
slow_login(void *p)
{
    hash_arg *h = p;
    sprig_identity *id = NULL;
    h->rc = sprig_auth_login_password(h->a, "slow", "pw", &id);
    sprig_identity_release(id);
    atomic_store(&h->done, 1);
    return NULL;
}

static void
test_hash_bound(void **state)
{
    (void)state;
    sprig_storage *st = open_st();
    sprig_auth_options o;
    sprig_auth_options_min(&o);
    o.opslimit = 3;
    o.memlimit = 32u << 20; /* slow enough to overlap (~100 ms) */
    o.max_hashing = 1;
    sprig_auth *a = NULL;
    SPRIG_OK_(sprig_auth_open(st, &o, &a));
    SPRIG_OK_(sprig_auth_user_create(a, NULL, "slow", "pw"));
    int busy = 0;
    for (int round = 0; round < 20 && !busy; round++) {
        hash_arg h = {a, 0, 0};
        pthread_t t;
        pthread_create(&t, NULL, slow_login, &h);
        while (atomic_load(&a->hashing) == 0 && !atomic_load(&h.done)) {
            usleep(100);
        }
        sprig_identity *id = NULL;
        int rc = sprig_auth_login_password(a, "slow", "pw", &id);
        sprig_identity_release(id);
        pthread_join(t, NULL);
        busy += rc == SPRIG_EBUSY;
    }
    assert_true(busy > 0);
    sprig_auth_free(a);
    sprig_storage_close(st);
}

int
main(void)
{
    dir = tu_tmpdir("auth");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_records_and_login),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_hash_bound),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmtree(dir);
    return rc;
}
