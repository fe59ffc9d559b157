/*
 * auth_int.h -- private interface of src/auth (the permission engine).
 *
 *   perm.c      pattern matching over dotted names, statement lists,
 *               canonical resource names
 *   records.c   the admin records in the "_admin" database (JSON
 *               documents keyed by name) and their changes
 *   login.c     argon2id passwords (with the bound on hashing), token
 *               challenges and responses, assume-identity
 *   identity.c  identities: reference counts, effective permissions
 *               computed from the records and refreshed on change
 *   narrow.c    storage and database handles narrowed to an identity
 */
#ifndef SPRIG_AUTH_INT_H
#define SPRIG_AUTH_INT_H

#include "core/core.h"
#include "sprig/auth.h"

#include <pthread.h>
#include <stdatomic.h>

/** One statement: comma-separated action patterns on a resource pattern. */
typedef struct sprig__stmt {
    char *actions;
    char *resource;
} sprig__stmt;

typedef struct sprig__stmts {
    sprig__stmt *items;
    size_t n, cap;
} sprig__stmts;

/** Append a copy of (actions, resource).  SPRIG_ENOMEM. */
int sprig__stmts_add(sprig__stmts *s, const char *actions,
                     const char *resource);
void sprig__stmts_free(sprig__stmts *s);
/** Does a statement of `s` grant `action` on `resource`? */
bool sprig__stmts_allow(const sprig__stmts *s, const char *action,
                        const char *resource);
/** Does pattern `p` match dotted name `name` (segment-wise, '*' a glob
 *  inside a segment, a shorter pattern covering the names below it)? */
bool sprig__pattern_match(const char *p, const char *name);
/** Is `p` a well-formed pattern (non-empty segments of [A-Za-z0-9_%*-])?
 *  SPRIG_EINVAL naming it. */
int sprig__pattern_check(const char *p, const char *what);

/** Append one name segment in canonical form ('.' first unless `first`):
 *  bytes outside [A-Za-z0-9_-] as %XX.  SPRIG_ENOMEM. */
int sprig__auth_segment(sprig_buf *out, sprig_bytes seg, bool first);
/** "sprig.<kind>.<name>" as a C string into `out` (emptied first). */
int sprig__auth_res(sprig_buf *out, const char *kind, const char *name);

#define SPRIG__CHALLENGES 4096

typedef struct sprig__challenge {
    uint8_t nonce[32];
    uint64_t ms;
    bool live;
} sprig__challenge;

struct sprig_auth {
    sprig_storage *st;
    sprig_db *db; /* "_admin" */
    sprig_auth_options o;
    atomic_uint_fast64_t gen; /* bumped by every change of the records */
    atomic_uint hashing;      /* argon2id computations running */
    pthread_mutex_t lock;     /* the challenges */
    sprig__challenge ch[SPRIG__CHALLENGES];
    size_t ch_next;
    char dummy[128]; /* a hash verified for unknown users */
};

struct sprig_identity {
    atomic_int refs;
    sprig_auth *a;
    bool role;      /* a role's identity (assumed) */
    char name[80];  /* user or role name */
    char label[96]; /* what sprig_identity_name returns */
    pthread_mutex_t lock;
    uint64_t gen; /* of `perms` */
    uint64_t txn; /* "_admin"'s last transaction id when `perms` were read */
    bool loaded;
    sprig__stmts perms;
};

/** A new identity of user (or role) `name` with its permissions loaded.
 *  SPRIG_ENOTFOUND when the record is missing, SPRIG_ENOMEM. */
int sprig__identity_new(sprig_auth *a, bool role, const char *name,
                        sprig_identity **out);

/* ---- records.c ---------------------------------------------------------- */

/** The statements granted to user (or role) `name` into `out`:
 *  its groups' and (a user) its roles' groups'.  SPRIG_ENOTFOUND when the
 *  record is missing. */
int sprig__records_perms(sprig_auth *a, bool role, const char *name,
                         sprig__stmts *out);
/** A user's stored password hash (a copy into `out`, "" when none).
 *  SPRIG_ENOTFOUND. */
int sprig__records_password(sprig_auth *a, const char *user, char *out,
                            size_t cap);
/** A token's user and key (32 bytes).  SPRIG_ENOTFOUND. */
int sprig__records_token(sprig_auth *a, const char *id, char *user, size_t cap,
                         uint8_t key[32]);
/** Check that `as` (NULL: unchecked) may do `action` on sprig.<kind>.<name>. */
int sprig__records_may(sprig_identity *as, const char *action, const char *kind,
                       const char *name);
/** Is there a record `name` in collection `coll`? */
bool sprig__records_exist(sprig_auth *a, const char *coll, const char *name);
/** Hash a password with the engine's argon2id cost into `out`
 *  (crypto_pwhash_STRBYTES).  SPRIG_ENOMEM (argon2 could not run). */
int sprig__hash_password(sprig_auth *a, const char *password, char *out);

#endif
