/*
 * auth.h -- users, roles, permission groups, authentication tokens and the
 * permission checks of Sprig (issue 10, F9).
 *
 * The admin records live in the database "_admin" of a storage (schema
 * "_admin": collections users, roles, groups, tokens, each keyed by its
 * name, so names are unique by construction).  A `sprig_auth` is the
 * permission engine over one storage: it creates that database when
 * missing, changes the records (each change itself a permissioned action
 * when made for an identity), authenticates (argon2id passwords, token
 * challenge-response) and hands out identities whose effective permissions
 * it computes once and refreshes when the records change.
 *
 * Permissions.  A group holds statements; a statement grants action
 * patterns on a resource pattern.  Resource names are the canonical ones
 * of docs/protocol.md ("sprig.db.app.collection.msgs.document.%2A"), plus
 * sprig.user.<name>, sprig.role.<name>, sprig.group.<name> and
 * sprig.token.<id> for the admin records.  Both patterns are '.'-separated
 * segments where '*' inside a segment matches any run of characters; a
 * pattern matches a name when each of its segments matches the name's
 * segment at the same place -- so a grant on "sprig.db.app" covers every
 * resource inside that database, and the action pattern "kv" covers
 * "kv.get" and "kv.set" (the actions form a tree by their dotted names);
 * "*" matches everything.  Effective permissions = the statements of the
 * user's groups + those of the groups of the user's roles.  An identity
 * with none may still authenticate ("auth.*" rows are open to all).
 *
 * Threads: every function is safe from any thread; an identity may be
 * shared by threads (its checks take its own lock).
 */
#ifndef SPRIG_AUTH_H
#define SPRIG_AUTH_H

#include "sprig/sprig.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The database holding the admin records. */
#define SPRIG_AUTH_DB "_admin"

typedef struct sprig_auth sprig_auth;
typedef struct sprig_identity sprig_identity;

typedef struct sprig_auth_options {
    /** argon2id cost of the password hashes made from now on (libsodium's
     *  opslimit and memlimit; 0: crypto_pwhash's INTERACTIVE defaults,
     *  2 passes over 64 MiB).  Verifying uses the cost the hash records. */
    unsigned long long opslimit;
    size_t memlimit;
    /** argon2id computations at once (default 4): past it a login is
     *  refused with SPRIG_EBUSY at once, so a login flood holds at most
     *  this many times memlimit and this many cores. */
    unsigned max_hashing;
    /** A token response must use a challenge younger than this and carry a
     *  client time within this of the server's (default 60000 ms). */
    unsigned token_window_ms;
} sprig_auth_options;

/** Fill `o` with the defaults above. */
SPRIG_API void sprig_auth_options_init(sprig_auth_options *o);
/** Fill `o` with the defaults but the cheapest argon2id libsodium allows
 *  (1 pass over 8 KiB): for tests, never for real passwords. */
SPRIG_API void sprig_auth_options_min(sprig_auth_options *o);

/**
 * The permission engine over `st` (borrowed: keep it open until
 * sprig_auth_free()).  Registers the "_admin" schema and creates the
 * "_admin" database when missing.  `o` may be NULL (defaults).
 * Errors: those of the storage calls, SPRIG_ENOMEM.
 */
SPRIG_API int sprig_auth_open(sprig_storage *st, const sprig_auth_options *o,
                              sprig_auth **out);
/** Free (identities made by it must be released first).  NULL: no-op. */
SPRIG_API void sprig_auth_free(sprig_auth *a);

/** Say that the admin records changed behind the engine's back (written
 *  to "_admin" directly): every identity recomputes its permissions at its
 *  next check.  The engine's own changes do this themselves. */
SPRIG_API void sprig_auth_changed(sprig_auth *a);

/** How many users the records hold (0: nobody can log in yet).  Errors:
 *  those of the storage. */
SPRIG_API int sprig_auth_user_count(sprig_auth *a, uint64_t *n);

/* ---- admin records ------------------------------------------------------
 * `as` is the identity making the change, checked for the action named
 * (e.g. "user.create" on "sprig.user.<name>"), or NULL for the program
 * itself (unchecked: the embedding program and `sprig --path DIR admin`).
 * Names follow the rules of database names.  Errors: SPRIG_EPERM (`as`
 * lacks the action), SPRIG_EINVAL (a bad name or pattern), SPRIG_EEXIST
 * (create: the name is taken), SPRIG_ENOTFOUND (a record named is
 * missing), and those of the storage. */

/** "user.create".  `password` may be NULL (token-only user); it is hashed
 *  with argon2id and never stored or logged in clear. */
SPRIG_API int sprig_auth_user_create(sprig_auth *a, sprig_identity *as,
                                     const char *name, const char *password);
/** "user.set_password" (NULL password: none, token-only). */
SPRIG_API int sprig_auth_user_set_password(sprig_auth *a, sprig_identity *as,
                                           const char *name,
                                           const char *password);
/** "user.delete" (its tokens stop working). */
SPRIG_API int sprig_auth_user_delete(sprig_auth *a, sprig_identity *as,
                                     const char *name);
/** "user.change_groups" on the user: add or remove (`add` false) a
 *  group, which must exist to be added. */
SPRIG_API int sprig_auth_user_group(sprig_auth *a, sprig_identity *as,
                                    const char *user, const char *group,
                                    bool add);
/** "user.change_roles": add or remove a role. */
SPRIG_API int sprig_auth_user_role(sprig_auth *a, sprig_identity *as,
                                   const char *user, const char *role,
                                   bool add);
/** "role.create" on "sprig.role.<name>". */
SPRIG_API int sprig_auth_role_create(sprig_auth *a, sprig_identity *as,
                                     const char *name);
/** "role.change_groups": add or remove a group of a role. */
SPRIG_API int sprig_auth_role_group(sprig_auth *a, sprig_identity *as,
                                    const char *role, const char *group,
                                    bool add);
/** "group.create" on "sprig.group.<name>". */
SPRIG_API int sprig_auth_group_create(sprig_auth *a, sprig_identity *as,
                                      const char *name);
/** "group.grant": add a statement granting `actions` (patterns separated
 *  by ',', e.g. "document.get,kv" or "*") on `resource` (a pattern). */
SPRIG_API int sprig_auth_group_grant(sprig_auth *a, sprig_identity *as,
                                     const char *group, const char *actions,
                                     const char *resource);
/** "group.grant": remove every statement of the group on exactly
 *  `resource`. */
SPRIG_API int sprig_auth_group_revoke(sprig_auth *a, sprig_identity *as,
                                      const char *group, const char *resource);

/** The length of a token's id and secret in their text forms (hex). */
#define SPRIG_TOKEN_ID_LEN 16
#define SPRIG_TOKEN_SECRET_LEN 64
/**
 * "token.create" on "sprig.user.<user>": a new token acting as `user`.
 * Writes its id (SPRIG_TOKEN_ID_LEN hex + NUL) and secret
 * (SPRIG_TOKEN_SECRET_LEN hex + NUL) into the caller's buffers.  Only a
 * hash of the secret is stored; the secret is shown this once.
 */
SPRIG_API int sprig_auth_token_create(sprig_auth *a, sprig_identity *as,
                                      const char *user,
                                      char id[SPRIG_TOKEN_ID_LEN + 1],
                                      char secret[SPRIG_TOKEN_SECRET_LEN + 1]);
/** "token.delete" on "sprig.token.<id>". */
SPRIG_API int sprig_auth_token_delete(sprig_auth *a, sprig_identity *as,
                                      const char *id);

/* ---- one change of the admin records (the network's admin.* rows) --------
 * The admin functions above as data, so a change can travel: the server's
 * admin.* rows (docs/protocol.md, "Administration") decode into one,
 * sprig_client_admin() (client.h) sends one, and `sprig admin` builds one
 * for either.  The order is that of the rows (proto/api.h). */

typedef enum sprig_admin_op {
    SPRIG_ADMIN_USER_CREATE,       /**< name, password (NULL: token-only) */
    SPRIG_ADMIN_USER_SET_PASSWORD, /**< name, password (NULL: none) */
    SPRIG_ADMIN_USER_DELETE,       /**< name */
    SPRIG_ADMIN_USER_GROUP,        /**< name, other = the group, add */
    SPRIG_ADMIN_USER_ROLE,         /**< name, other = the role, add */
    SPRIG_ADMIN_ROLE_CREATE,       /**< name */
    SPRIG_ADMIN_ROLE_GROUP,        /**< name (the role), other, add */
    SPRIG_ADMIN_GROUP_CREATE,      /**< name */
    SPRIG_ADMIN_GROUP_GRANT,       /**< name (the group), actions, resource */
    SPRIG_ADMIN_GROUP_REVOKE,      /**< name (the group), resource */
    SPRIG_ADMIN_TOKEN_CREATE,      /**< name = the user: id and secret out */
    SPRIG_ADMIN_TOKEN_DELETE,      /**< name = the token's id */
    SPRIG_ADMIN_OPS                /**< how many there are */
} sprig_admin_op;

/** One change; the strings are borrowed.  Fields an op does not use are
 *  ignored. */
typedef struct sprig_admin_change {
    sprig_admin_op op;
    const char *name;
    const char *password;
    const char *other;
    const char *actions, *resource;
    bool add;
} sprig_admin_change;

/** What SPRIG_ADMIN_TOKEN_CREATE made (the secret is shown this once:
 *  wipe it when done). */
typedef struct sprig_admin_token {
    char id[SPRIG_TOKEN_ID_LEN + 1];
    char secret[SPRIG_TOKEN_SECRET_LEN + 1];
} sprig_admin_token;

/**
 * Make change `ch` as `as` (NULL: the program, unchecked) by calling the
 * function above that its op names.  `tok` receives a created token
 * (may be NULL for other ops).  The action each op is checked for:
 * user.create, user.set_password, user.delete, user.change_groups,
 * user.change_roles (on sprig.user.<name>), role.create,
 * role.change_groups (sprig.role.<name>), group.create, group.grant (for
 * grant and revoke; sprig.group.<name>), token.create (sprig.user.<user>),
 * token.delete (sprig.token.<id>).  Errors: those of that function;
 * SPRIG_EINVAL (an unknown op, a NULL name, no `tok` for a token).
 */
SPRIG_API int sprig_auth_apply(sprig_auth *a, sprig_identity *as,
                               const sprig_admin_change *ch,
                               sprig_admin_token *tok);
/** The action op `op` is checked for ("user.create", ...; NULL when
 *  unknown).  Static. */
SPRIG_API const char *sprig_admin_action(sprig_admin_op op);

/* ---- authentication ------------------------------------------------------ */

/**
 * Check `user`'s password (argon2id) and return its identity (release it).
 * Unknown users cost the same hashing as known ones.
 * Errors: SPRIG_EPERM ("authentication failed": wrong password, unknown
 * user, user without a password -- the same message for all),
 * SPRIG_EBUSY (max_hashing computations already running), SPRIG_ENOMEM.
 */
SPRIG_API int sprig_auth_login_password(sprig_auth *a, const char *user,
                                        const char *password,
                                        sprig_identity **out);

/** A token challenge: 32 random bytes and the server's time (ms since the
 *  epoch).  Each challenge answers one response, then is forgotten (the
 *  engine remembers the newest 4096 outstanding).  SPRIG_ENOMEM. */
SPRIG_API int sprig_auth_token_challenge(sprig_auth *a, uint8_t nonce[32],
                                         uint64_t *server_ms);

/**
 * The response to a challenge (client side; the secret stays here):
 * keyed BLAKE2b-256 under BLAKE2b-256(secret) of "sprig-token/1", the id,
 * the nonce, server_ms and client_ms (both u64 big-endian).
 * `secret` is the hex text.  Errors: SPRIG_EINVAL (malformed secret).
 */
SPRIG_API int sprig_auth_token_response(const char *id, const char *secret,
                                        const uint8_t nonce[32],
                                        uint64_t server_ms, uint64_t client_ms,
                                        uint8_t mac[32]);

/**
 * Check a token response; on success return the token's identity.
 * Errors: SPRIG_EPERM (unknown token or challenge -- one already answered:
 * a replay --, a stale challenge or client time, a wrong MAC, the token's
 * user deleted), SPRIG_ENOMEM.
 */
SPRIG_API int sprig_auth_login_token(sprig_auth *a, const char *id,
                                     const uint8_t nonce[32],
                                     uint64_t server_ms, uint64_t client_ms,
                                     const uint8_t mac[32],
                                     sprig_identity **out);

/**
 * Assume another identity: `kind` "user" or "role", checked for
 * "identity.assume" on "sprig.user.<name>" / "sprig.role.<name>" for
 * `as` (NULL: the program, unchecked).  A role identity has the role's
 * groups' permissions.  Errors: SPRIG_EPERM, SPRIG_ENOTFOUND,
 * SPRIG_EINVAL.
 */
SPRIG_API int sprig_auth_assume(sprig_auth *a, sprig_identity *as,
                                const char *kind, const char *name,
                                sprig_identity **out);

/* ---- identities --------------------------------------------------------- */

/** The identity's name ("alice"; a role: "role:admins").  Borrowed. */
SPRIG_API const char *sprig_identity_name(const sprig_identity *id);
/**
 * May `id` do `action` on `resource` (a canonical resource name)?
 * 0, or SPRIG_EPERM with a detail naming both.  The permissions are
 * recomputed first when the admin records changed since they were.
 */
SPRIG_API int sprig_identity_check(sprig_identity *id, const char *action,
                                   const char *resource);
/** Another reference to `id` (returned). */
SPRIG_API sprig_identity *sprig_identity_ref(sprig_identity *id);
/** Drop a reference.  NULL: no-op. */
SPRIG_API void sprig_identity_release(sprig_identity *id);

/* ---- local narrowing ---------------------------------------------------- */

/**
 * A storage handle on `st` that acts as `id`: every call is checked as the
 * server checks it (the same actions and resource names: docs/protocol.md)
 * and refused with SPRIG_EPERM, changing nothing, when not granted; its
 * database handles are narrowed the same way.  Takes a reference to `id`;
 * borrows `st` (keep it open while this is).  Close it with
 * sprig_storage_close() (does not close `st`).  A write to "_admin"
 * through it marks the records changed.
 * Errors: SPRIG_EINVAL, SPRIG_ENOMEM.
 */
SPRIG_API int sprig_storage_narrow(sprig_storage *st, sprig_auth *a,
                                   sprig_identity *id, sprig_storage **out);

#ifdef __cplusplus
}
#endif
#endif /* SPRIG_AUTH_H */
