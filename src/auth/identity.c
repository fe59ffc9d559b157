/*
 * identity.c -- the permission engine and its identities (src/auth).
 *
 * An identity is a user (or an assumed role) with its effective
 * permissions: the statements of its groups and of its roles' groups,
 * read from the admin records once and kept with the engine's generation
 * at that time.  Every change of the records bumps the generation, so the
 * next check of any identity sees it differ and reads the records again:
 * a user removed from a group loses the group's grants on their next
 * request.  A deleted user keeps no permission at all.
 */
#include "auth/auth_int.h"

#include <sodium.h>
#include <stdio.h>

static const sprig_collection_def admin_cols[] = {
    {"users", SPRIG_ID_NATURAL, 0},
    {"roles", SPRIG_ID_NATURAL, 0},
    {"groups", SPRIG_ID_NATURAL, 0},
    {"tokens", SPRIG_ID_NATURAL, 0},
};
static const sprig_schema_def admin_schema = {SPRIG_AUTH_DB, admin_cols, 4};

void
sprig_auth_options_init(sprig_auth_options *o)
{
    memset(o, 0, sizeof *o);
    o->opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    o->memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    o->max_hashing = 4;
    o->token_window_ms = 60000;
}

void
sprig_auth_options_min(sprig_auth_options *o)
{
    sprig_auth_options_init(o);
    o->opslimit = crypto_pwhash_OPSLIMIT_MIN;
    o->memlimit = crypto_pwhash_MEMLIMIT_MIN;
}

static int
open_db(sprig_auth *a)
{
    int rc = sprig_storage_register_schema(a->st, &admin_schema);
    rc = rc ? rc
            : sprig_storage_create_database(a->st, SPRIG_AUTH_DB, SPRIG_AUTH_DB,
                                            true);
    rc = rc ? rc : sprig_storage_open_database(a->st, SPRIG_AUTH_DB, &a->db);
    /* the hash verified for unknown users, so they cost the same time */
    return rc ? rc : sprig__hash_password(a, "sprig: no such user", a->dummy);
}

int
sprig_auth_open(sprig_storage *st, const sprig_auth_options *o,
                sprig_auth **out)
{
    if (!st || !out) {
        return sprig__err(SPRIG_EINVAL, "sprig_auth_open: NULL argument");
    }
    *out = NULL;
    if (sodium_init() < 0) {
        return sprig__err(SPRIG_EIO, "libsodium could not start");
    }
    sprig_auth *a = sprig__calloc(1, sizeof *a);
    if (!a) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    a->st = st;
    if (o) {
        a->o = *o;
    } else {
        sprig_auth_options_init(&a->o);
    }
    a->o.opslimit =
        a->o.opslimit ? a->o.opslimit : crypto_pwhash_OPSLIMIT_INTERACTIVE;
    a->o.memlimit =
        a->o.memlimit ? a->o.memlimit : crypto_pwhash_MEMLIMIT_INTERACTIVE;
    a->o.max_hashing = a->o.max_hashing ? a->o.max_hashing : 4;
    a->o.token_window_ms = a->o.token_window_ms ? a->o.token_window_ms : 60000;
    atomic_init(&a->gen, 1);
    atomic_init(&a->hashing, 0);
    pthread_mutex_init(&a->lock, NULL);
    int rc = open_db(a);
    if (rc) {
        sprig_auth_free(a);
        return rc;
    }
    *out = a;
    return SPRIG_OK;
}

void
sprig_auth_free(sprig_auth *a)
{
    if (!a) {
        return;
    }
    if (a->db) {
        sprig_db_close(a->db);
    }
    pthread_mutex_destroy(&a->lock);
    sodium_memzero(a->ch, sizeof a->ch);
    sprig__free(a);
}

void
sprig_auth_changed(sprig_auth *a)
{
    if (a) {
        atomic_fetch_add(&a->gen, 1);
    }
}

/* The last transaction id of "_admin": it moves with every change of the
 * records, also those the engine did not make -- on a cluster node, the
 * changes replicated from the leader (cconf), an installed snapshot. */
static int
records_txn(sprig_auth *a, uint64_t *txn)
{
    return sprig_last_txn_id(a->db, txn);
}

/* (Re)compute the permissions when the records changed (lock held). */
static int
refresh(sprig_identity *id)
{
    uint64_t gen = atomic_load(&id->a->gen), txn = 0;
    int rc = records_txn(id->a, &txn);
    if (rc || (id->loaded && id->gen == gen && id->txn == txn)) {
        return rc;
    }
    sprig__stmts s = {0};
    rc = sprig__records_perms(id->a, id->role, id->name, &s);
    if (rc == SPRIG_ENOTFOUND) {
        rc = SPRIG_OK; /* deleted: no permission at all */
    }
    if (rc) {
        sprig__stmts_free(&s);
        return rc;
    }
    sprig__stmts_free(&id->perms);
    id->perms = s;
    id->gen = gen;
    id->txn = txn;
    id->loaded = true;
    return SPRIG_OK;
}

int
sprig__identity_new(sprig_auth *a, bool role, const char *name,
                    sprig_identity **out)
{
    sprig_identity *id = sprig__calloc(1, sizeof *id);
    if (!id) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    atomic_init(&id->refs, 1);
    id->a = a;
    id->role = role;
    snprintf(id->name, sizeof id->name, "%s", name);
    snprintf(id->label, sizeof id->label, "%s%s", role ? "role:" : "", name);
    pthread_mutex_init(&id->lock, NULL);
    id->gen = atomic_load(&a->gen);
    int rc = records_txn(a, &id->txn);
    rc = rc ? rc : sprig__records_perms(a, role, name, &id->perms);
    if (rc) {
        sprig_identity_release(id);
        return rc;
    }
    id->loaded = true;
    *out = id;
    return SPRIG_OK;
}

const char *
sprig_identity_name(const sprig_identity *id)
{
    return id ? id->label : "";
}

int
sprig_identity_check(sprig_identity *id, const char *action,
                     const char *resource)
{
    if (!id || !action || !resource) {
        return sprig__err(SPRIG_EPERM,
                          "not allowed: action '%s' on resource "
                          "'%s' (not authenticated)",
                          action ? action : "", resource ? resource : "");
    }
    pthread_mutex_lock(&id->lock);
    int rc = refresh(id);
    bool ok = rc == 0 && sprig__stmts_allow(&id->perms, action, resource);
    pthread_mutex_unlock(&id->lock);
    if (rc) {
        return rc;
    }
    return ok ? SPRIG_OK
              : sprig__err(SPRIG_EPERM,
                           "not allowed: action '%s' on resource '%s' for "
                           "'%s'",
                           action, resource, id->label);
}

sprig_identity *
sprig_identity_ref(sprig_identity *id)
{
    if (id) {
        atomic_fetch_add(&id->refs, 1);
    }
    return id;
}

void
sprig_identity_release(sprig_identity *id)
{
    if (id && atomic_fetch_sub(&id->refs, 1) == 1) {
        sprig__stmts_free(&id->perms);
        pthread_mutex_destroy(&id->lock);
        sprig__free(id);
    }
}
