/*
 * records.c -- the admin records (src/auth): users, roles, permission
 * groups and tokens, as JSON documents in the "_admin" database, each
 * collection keyed by the record's name (natural ids), so a name is unique
 * by construction and a lookup is one read.
 *
 *   users/<name>   {"password": "$argon2id$..." | null,
 *                   "groups": [...], "roles": [...]}
 *   roles/<name>   {"groups": [...]}
 *   groups/<name>  {"statements": [{"actions": "kv,document.get",
 *                                   "resource": "sprig.db.app"}, ...]}
 *   tokens/<id>    {"user": "alice", "key": "<hex BLAKE2b-256(secret)>"}
 *
 * A change reads the record, edits it and writes it back expecting the
 * revision it read (retrying a few times on a conflict), then bumps the
 * engine's generation so identities recompute their permissions.
 */
#include "auth/auth_int.h"

#include <stdio.h>

#include <jansson.h>
#include <sodium.h>

/* Read record `name` of `coll` as a JSON object (*out NULL: missing). */
static int
rec_read(sprig_auth *a, const char *coll, const char *name, json_t **out,
         sprig_header_buf *hb)
{
    *out = NULL;
    sprig_doc *d = NULL;
    int rc = sprig_get(a->db, coll, sprig_str(name), &d);
    if (rc == SPRIG_ENOTFOUND) {
        return SPRIG_OK;
    }
    if (rc) {
        return rc;
    }
    sprig_bytes c = sprig_doc_contents(d);
    sprig_header h = sprig_doc_header(d);
    if (hb) {
        memset(hb, 0, sizeof *hb);
        memcpy(hb->id, h.id.data, h.id.len);
        hb->id_len = (uint32_t)h.id.len;
        hb->revision = h.revision;
        memcpy(hb->hash, h.hash, 16);
    }
    *out = json_loadb((const char *)c.data, c.len, 0, NULL);
    sprig_doc_free(d);
    if (!*out || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return sprig__err(SPRIG_ECORRUPT, "admin record %s/%s is not JSON",
                          coll, name);
    }
    return SPRIG_OK;
}

static int
rec_write(sprig_auth *a, const char *coll, const char *name, json_t *rec,
          const sprig_header_buf *expected)
{
    char *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    sprig_bytes c = {(const uint8_t *)text, strlen(text)};
    int rc;
    if (expected) {
        sprig_header h = sprig_header_of(expected);
        rc = sprig_update(a->db, coll, &h, c, NULL);
    } else {
        sprig_bytes id = sprig_str(name);
        rc = sprig_insert(a->db, coll, &id, c, NULL);
    }
    sodium_memzero(text, strlen(text));
    free(text);
    return rc;
}

typedef int (*edit_fn)(sprig_auth *a, json_t *rec, const void *arg);

/* Read-edit-write record `name`; `fresh` (not NULL) creates it instead. */
static int
rec_edit(sprig_auth *a, const char *coll, const char *name, edit_fn edit,
         const void *arg, json_t *fresh)
{
    int rc = SPRIG_ECONFLICT;
    if (fresh) {
        rc = rec_write(a, coll, name, fresh, NULL);
        if (rc == SPRIG_ECONFLICT) {
            rc = sprig__err(SPRIG_EEXIST, "%s '%s' exists already", coll, name);
        }
    }
    for (int tries = 0; !fresh && rc == SPRIG_ECONFLICT && tries < 16;
         tries++) {
        json_t *rec;
        sprig_header_buf hb;
        rc = rec_read(a, coll, name, &rec, &hb);
        if (rc == 0 && !rec) {
            rc = sprig__err(SPRIG_ENOTFOUND, "no %s '%s'", coll, name);
        }
        rc = rc ? rc : edit(a, rec, arg);
        rc = rc ? rc : rec_write(a, coll, name, rec, &hb);
        json_decref(rec);
    }
    if (rc == 0) {
        sprig_auth_changed(a);
    }
    return rc;
}

bool
sprig__records_exist(sprig_auth *a, const char *coll, const char *name)
{
    sprig_doc *d = NULL;
    int rc = sprig_get(a->db, coll, sprig_str(name), &d);
    sprig_doc_free(d);
    return rc == 0;
}

int
sprig__records_may(sprig_identity *as, const char *action, const char *kind,
                   const char *name)
{
    if (!as) {
        return SPRIG_OK;
    }
    sprig_buf r = {0};
    int rc = sprig__auth_res(&r, kind, name);
    rc = rc ? rc : sprig_identity_check(as, action, (const char *)r.data);
    sprig_buf_clear(&r);
    return rc;
}

static int
name_ok(const char *name, const char *what)
{
    char w[64];
    snprintf(w, sizeof w, "%s name", what);
    return sprig__check_coll_name(w, name);
}

int
sprig__hash_password(sprig_auth *a, const char *password, char *out)
{
    if (crypto_pwhash_str_alg(out, password, strlen(password), a->o.opslimit,
                              a->o.memlimit,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        return sprig__err(SPRIG_ENOMEM, "argon2id could not run (memory)");
    }
    return SPRIG_OK;
}

static int
new_user_rec(sprig_auth *a, const char *password, json_t **out)
{
    char hash[crypto_pwhash_STRBYTES] = "";
    int rc = password ? sprig__hash_password(a, password, hash) : 0;
    *out = rc ? NULL
              : json_pack("{s:o,s:[],s:[]}", "password",
                          password ? json_string(hash) : json_null(), "groups",
                          "roles");
    return rc ? rc : *out ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
}

int
sprig_auth_user_create(sprig_auth *a, sprig_identity *as, const char *name,
                       const char *password)
{
    int rc = a ? name_ok(name, "user") : SPRIG_EINVAL;
    rc = rc ? rc : sprig__records_may(as, "user.create", "user", name);
    json_t *rec = NULL;
    rc = rc ? rc : new_user_rec(a, password, &rec);
    rc = rc ? rc : rec_edit(a, "users", name, NULL, NULL, rec);
    json_decref(rec);
    return rc;
}

static int
set_password(sprig_auth *a, json_t *rec, const void *arg)
{
    const char *pw = arg;
    char hash[crypto_pwhash_STRBYTES];
    int rc = pw ? sprig__hash_password(a, pw, hash) : 0;
    if (rc == 0) {
        json_object_set_new(rec, "password",
                            pw ? json_string(hash) : json_null());
    }
    return rc;
}

int
sprig_auth_user_set_password(sprig_auth *a, sprig_identity *as,
                             const char *name, const char *password)
{
    int rc = a ? name_ok(name, "user") : SPRIG_EINVAL;
    rc = rc ? rc : sprig__records_may(as, "user.set_password", "user", name);
    return rc ? rc : rec_edit(a, "users", name, set_password, password, NULL);
}

static int
rec_delete(sprig_auth *a, const char *coll, const char *name)
{
    sprig_doc *d = NULL;
    int rc = sprig_get(a->db, coll, sprig_str(name), &d);
    if (rc == 0) {
        sprig_header h = sprig_doc_header(d);
        rc = sprig_delete(a->db, coll, &h);
    }
    sprig_doc_free(d);
    if (rc == SPRIG_ENOTFOUND) {
        rc = sprig__err(SPRIG_ENOTFOUND, "no %s '%s'", coll, name);
    }
    if (rc == 0) {
        sprig_auth_changed(a);
    }
    return rc;
}

int
sprig_auth_user_delete(sprig_auth *a, sprig_identity *as, const char *name)
{
    int rc = a ? name_ok(name, "user") : SPRIG_EINVAL;
    rc = rc ? rc : sprig__records_may(as, "user.delete", "user", name);
    return rc ? rc : rec_delete(a, "users", name);
}

/* ---- membership lists -----------------------------------------------------
 */

typedef struct member_arg {
    const char *field, *value;
    bool add;
} member_arg;

static int
edit_member(sprig_auth *a, json_t *rec, const void *arg)
{
    (void)a;
    const member_arg *m = arg;
    json_t *list = json_object_get(rec, m->field);
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(rec, m->field, list);
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), m->value) == 0) {
            if (!m->add) {
                json_array_remove(list, i);
            }
            return SPRIG_OK;
        }
    }
    if (m->add && json_array_append_new(list, json_string(m->value)) != 0) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    return SPRIG_OK;
}

/* Add `value` to (or remove it from) list `field` of record `name`. */
static int
member(sprig_auth *a, sprig_identity *as, const char *coll, const char *kind,
       const char *action, const char *name, const char *field,
       const char *vcoll, const char *value, bool add)
{
    int rc = a ? name_ok(name, kind) : SPRIG_EINVAL;
    rc = rc ? rc : name_ok(value, vcoll);
    rc = rc ? rc : sprig__records_may(as, action, kind, name);
    if (rc == 0 && add && !sprig__records_exist(a, vcoll, value)) {
        rc = sprig__err(SPRIG_ENOTFOUND, "no %s '%s'", vcoll, value);
    }
    member_arg m = {field, value, add};
    return rc ? rc : rec_edit(a, coll, name, edit_member, &m, NULL);
}

int
sprig_auth_user_group(sprig_auth *a, sprig_identity *as, const char *user,
                      const char *group, bool add)
{
    return member(a, as, "users", "user", "user.change_groups", user, "groups",
                  "groups", group, add);
}

int
sprig_auth_user_role(sprig_auth *a, sprig_identity *as, const char *user,
                     const char *role, bool add)
{
    return member(a, as, "users", "user", "user.change_roles", user, "roles",
                  "roles", role, add);
}

int
sprig_auth_role_group(sprig_auth *a, sprig_identity *as, const char *role,
                      const char *group, bool add)
{
    return member(a, as, "roles", "role", "role.change_groups", role, "groups",
                  "groups", group, add);
}

static int
create_simple(sprig_auth *a, sprig_identity *as, const char *coll,
              const char *kind, const char *name, const char *list)
{
    char action[32];
    snprintf(action, sizeof action, "%s.create", kind);
    int rc = a ? name_ok(name, kind) : SPRIG_EINVAL;
    rc = rc ? rc : sprig__records_may(as, action, kind, name);
    json_t *rec = rc ? NULL : json_pack("{s:[]}", list);
    if (rc == 0 && !rec) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    rc = rc ? rc : rec_edit(a, coll, name, NULL, NULL, rec);
    json_decref(rec);
    return rc;
}

int
sprig_auth_role_create(sprig_auth *a, sprig_identity *as, const char *name)
{
    return create_simple(a, as, "roles", "role", name, "groups");
}

int
sprig_auth_group_create(sprig_auth *a, sprig_identity *as, const char *name)
{
    return create_simple(a, as, "groups", "group", name, "statements");
}

/* ---- statements ------------------------------------------------------------
 */

typedef struct grant_arg {
    const char *actions, *resource;
    bool add;
} grant_arg;

static int
edit_grant(sprig_auth *a, json_t *rec, const void *arg)
{
    (void)a;
    const grant_arg *g = arg;
    json_t *list = json_object_get(rec, "statements");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(rec, "statements", list);
    }
    if (g->add) {
        json_t *s = json_pack("{s:s,s:s}", "actions", g->actions, "resource",
                              g->resource);
        return s && json_array_append_new(list, s) == 0
                   ? SPRIG_OK
                   : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (size_t i = json_array_size(list); i-- > 0;) {
        const char *r = json_string_value(
            json_object_get(json_array_get(list, i), "resource"));
        if (r && strcmp(r, g->resource) == 0) {
            json_array_remove(list, i);
        }
    }
    return SPRIG_OK;
}

static int
actions_check(const char *actions)
{
    if (!actions || !*actions || strlen(actions) > 4096) {
        return sprig__err(SPRIG_EINVAL, "no actions named");
    }
    char one[256];
    for (const char *p = actions; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n >= sizeof one) {
            return sprig__err(SPRIG_EINVAL,
                              "actions '%s': an empty or "
                              "over-long action",
                              actions);
        }
        memcpy(one, p, n);
        one[n] = 0;
        int rc = sprig__pattern_check(one, "action");
        if (rc) {
            return rc;
        }
        p += n + (comma ? 1 : 0);
    }
    return SPRIG_OK;
}

static int
grant(sprig_auth *a, sprig_identity *as, const char *group, const char *actions,
      const char *resource, bool add)
{
    int rc = a ? name_ok(group, "group") : SPRIG_EINVAL;
    rc = rc ? rc : add ? actions_check(actions) : 0;
    rc = rc ? rc : sprig__pattern_check(resource, "resource");
    rc = rc ? rc : sprig__records_may(as, "group.grant", "group", group);
    grant_arg g = {actions, resource, add};
    return rc ? rc : rec_edit(a, "groups", group, edit_grant, &g, NULL);
}

int
sprig_auth_group_grant(sprig_auth *a, sprig_identity *as, const char *group,
                       const char *actions, const char *resource)
{
    return grant(a, as, group, actions, resource, true);
}

int
sprig_auth_group_revoke(sprig_auth *a, sprig_identity *as, const char *group,
                        const char *resource)
{
    return grant(a, as, group, NULL, resource, false);
}

/* ---- tokens
 * ------------------------------------------------------------------ */

int
sprig_auth_token_create(sprig_auth *a, sprig_identity *as, const char *user,
                        char id[SPRIG_TOKEN_ID_LEN + 1],
                        char secret[SPRIG_TOKEN_SECRET_LEN + 1])
{
    int rc = a && id && secret ? name_ok(user, "user") : SPRIG_EINVAL;
    rc = rc ? rc : sprig__records_may(as, "token.create", "user", user);
    if (rc == 0 && !sprig__records_exist(a, "users", user)) {
        rc = sprig__err(SPRIG_ENOTFOUND, "no users '%s'", user);
    }
    uint8_t rid[SPRIG_TOKEN_ID_LEN / 2], sec[32], key[32];
    char keyhex[65];
    randombytes_buf(rid, sizeof rid);
    randombytes_buf(sec, sizeof sec);
    crypto_generichash(key, 32, sec, 32, NULL, 0);
    sodium_bin2hex(id, SPRIG_TOKEN_ID_LEN + 1, rid, sizeof rid);
    sodium_bin2hex(keyhex, sizeof keyhex, key, 32);
    json_t *rec =
        rc ? NULL : json_pack("{s:s,s:s}", "user", user, "key", keyhex);
    if (rc == 0 && !rec) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    rc = rc ? rc : rec_edit(a, "tokens", id, NULL, NULL, rec);
    if (rc == 0) {
        sodium_bin2hex(secret, SPRIG_TOKEN_SECRET_LEN + 1, sec, 32);
    }
    json_decref(rec);
    sodium_memzero(sec, sizeof sec);
    sodium_memzero(keyhex, sizeof keyhex);
    return rc;
}

int
sprig_auth_token_delete(sprig_auth *a, sprig_identity *as, const char *id)
{
    int rc = a ? name_ok(id, "token") : SPRIG_EINVAL;
    rc = rc ? rc : sprig__records_may(as, "token.delete", "token", id);
    return rc ? rc : rec_delete(a, "tokens", id);
}

int
sprig__records_token(sprig_auth *a, const char *id, char *user, size_t cap,
                     uint8_t key[32])
{
    json_t *rec;
    int rc = sprig__check_coll_name("token id", id);
    rc = rc ? rc : rec_read(a, "tokens", id, &rec, NULL);
    if (rc) {
        return rc;
    }
    const char *u = json_string_value(json_object_get(rec, "user"));
    const char *k = json_string_value(json_object_get(rec, "key"));
    size_t klen = 0;
    if (!u || !k || strlen(u) >= cap ||
        sodium_hex2bin(key, 32, k, strlen(k), NULL, &klen, NULL) != 0 ||
        klen != 32) {
        rc = sprig__err(SPRIG_ENOTFOUND, "no usable token");
    } else {
        snprintf(user, cap, "%s", u);
    }
    json_decref(rec);
    return rc;
}

/* ---- what an identity is granted -------------------------------------------
 */

static int
group_stmts(sprig_auth *a, const char *group, sprig__stmts *out)
{
    json_t *rec;
    int rc = rec_read(a, "groups", group, &rec, NULL);
    if (rc || !rec) {
        return rc; /* a group that vanished grants nothing */
    }
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(rec, "statements"), i, s)
    {
        const char *ac = json_string_value(json_object_get(s, "actions"));
        const char *res = json_string_value(json_object_get(s, "resource"));
        if (ac && res && (rc = sprig__stmts_add(out, ac, res)) != 0) {
            break;
        }
    }
    json_decref(rec);
    return rc;
}

static int
groups_of(sprig_auth *a, json_t *rec, sprig__stmts *out)
{
    size_t i;
    json_t *g;
    int rc = SPRIG_OK;
    json_array_foreach(json_object_get(rec, "groups"), i, g)
    {
        if (json_is_string(g) &&
            (rc = group_stmts(a, json_string_value(g), out)) != 0) {
            break;
        }
    }
    return rc;
}

int
sprig__records_perms(sprig_auth *a, bool role, const char *name,
                     sprig__stmts *out)
{
    json_t *rec;
    int rc = rec_read(a, role ? "roles" : "users", name, &rec, NULL);
    if (rc == 0 && !rec) {
        return sprig__err(SPRIG_ENOTFOUND, "no %s '%s'", role ? "role" : "user",
                          name);
    }
    rc = rc ? rc : groups_of(a, rec, out);
    size_t i;
    json_t *r;
    json_array_foreach(role ? NULL : json_object_get(rec, "roles"), i, r)
    {
        json_t *rr = NULL;
        if (rc == 0 && json_is_string(r)) {
            rc = rec_read(a, "roles", json_string_value(r), &rr, NULL);
        }
        if (rc == 0 && rr) {
            rc = groups_of(a, rr, out);
        }
        json_decref(rr);
    }
    json_decref(rec);
    return rc;
}

int
sprig__records_password(sprig_auth *a, const char *user, char *out, size_t cap)
{
    json_t *rec;
    int rc = rec_read(a, "users", user, &rec, NULL);
    if (rc == 0 && !rec) {
        return SPRIG_ENOTFOUND;
    }
    if (rc == 0) {
        const char *h = json_string_value(json_object_get(rec, "password"));
        snprintf(out, cap, "%s", h && strlen(h) < cap ? h : "");
        json_decref(rec);
    }
    return rc;
}

int
sprig_auth_user_count(sprig_auth *a, uint64_t *n)
{
    if (!a || !n) {
        return sprig__err(SPRIG_EINVAL, "sprig_auth_user_count: NULL "
                                        "argument");
    }
    return sprig_count(a->db, "users", NULL, n);
}
