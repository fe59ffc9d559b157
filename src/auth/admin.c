/*
 * admin.c -- one change of the admin records as data (src/auth): the
 * sprig_admin_change that the server's admin.* rows decode into and that
 * `sprig admin` builds, made by calling the engine's function for its op
 * (records.c), which checks the acting identity itself.
 */
#include "auth/auth_int.h"

static const char *const actions[SPRIG_ADMIN_OPS] = {
    [SPRIG_ADMIN_USER_CREATE] = "user.create",
    [SPRIG_ADMIN_USER_SET_PASSWORD] = "user.set_password",
    [SPRIG_ADMIN_USER_DELETE] = "user.delete",
    [SPRIG_ADMIN_USER_GROUP] = "user.change_groups",
    [SPRIG_ADMIN_USER_ROLE] = "user.change_roles",
    [SPRIG_ADMIN_ROLE_CREATE] = "role.create",
    [SPRIG_ADMIN_ROLE_GROUP] = "role.change_groups",
    [SPRIG_ADMIN_GROUP_CREATE] = "group.create",
    [SPRIG_ADMIN_GROUP_GRANT] = "group.grant",
    [SPRIG_ADMIN_GROUP_REVOKE] = "group.grant",
    [SPRIG_ADMIN_TOKEN_CREATE] = "token.create",
    [SPRIG_ADMIN_TOKEN_DELETE] = "token.delete",
};

const char *
sprig_admin_action(sprig_admin_op op)
{
    return (unsigned)op < SPRIG_ADMIN_OPS ? actions[op] : NULL;
}

/* The ops on users. */
static int
user_op(sprig_auth *a, sprig_identity *as, const sprig_admin_change *ch)
{
    switch (ch->op) {
    case SPRIG_ADMIN_USER_CREATE:
        return sprig_auth_user_create(a, as, ch->name, ch->password);
    case SPRIG_ADMIN_USER_SET_PASSWORD:
        return sprig_auth_user_set_password(a, as, ch->name, ch->password);
    case SPRIG_ADMIN_USER_DELETE:
        return sprig_auth_user_delete(a, as, ch->name);
    case SPRIG_ADMIN_USER_GROUP:
        return sprig_auth_user_group(a, as, ch->name, ch->other, ch->add);
    default: return sprig_auth_user_role(a, as, ch->name, ch->other, ch->add);
    }
}

/* The ops on roles, groups and tokens. */
static int
other_op(sprig_auth *a, sprig_identity *as, const sprig_admin_change *ch,
         sprig_admin_token *tok)
{
    switch (ch->op) {
    case SPRIG_ADMIN_ROLE_CREATE:
        return sprig_auth_role_create(a, as, ch->name);
    case SPRIG_ADMIN_ROLE_GROUP:
        return sprig_auth_role_group(a, as, ch->name, ch->other, ch->add);
    case SPRIG_ADMIN_GROUP_CREATE:
        return sprig_auth_group_create(a, as, ch->name);
    case SPRIG_ADMIN_GROUP_GRANT:
        return sprig_auth_group_grant(a, as, ch->name, ch->actions,
                                      ch->resource);
    case SPRIG_ADMIN_GROUP_REVOKE:
        return sprig_auth_group_revoke(a, as, ch->name, ch->resource);
    case SPRIG_ADMIN_TOKEN_CREATE:
        return tok ? sprig_auth_token_create(a, as, ch->name, tok->id,
                                             tok->secret)
                   : sprig__err(SPRIG_EINVAL, "creating a token needs "
                                              "somewhere to put it");
    default: return sprig_auth_token_delete(a, as, ch->name);
    }
}

int
sprig_auth_apply(sprig_auth *a, sprig_identity *as,
                 const sprig_admin_change *ch, sprig_admin_token *tok)
{
    if (!a || !ch || !ch->name || !sprig_admin_action(ch->op)) {
        return sprig__err(SPRIG_EINVAL, "sprig_auth_apply: no engine, no "
                                        "change, no name or an unknown op");
    }
    bool on_user = ch->op <= SPRIG_ADMIN_USER_ROLE;
    return on_user ? user_op(a, as, ch) : other_op(a, as, ch, tok);
}
