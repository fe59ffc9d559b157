/*
 * admin.c -- the first administrator of a new cluster, through the Raft
 * log (sprig_cluster_bootstrap_admin, docs/cluster.md "Start a cluster").
 * A fresh cluster's `_admin` database holds no user, so nobody could log
 * in; copying a seed storage to every node worked but is not in the log
 * (a node added later had it only by snapshot).  Here the node that is
 * the leader writes the administrator with the permission engine's own
 * calls on the node's storage -- group "admins" granted '*' on "sprig",
 * the user, the user in the group -- and every one of those writes is a
 * replicated transaction of `_admin` like any other, so every node, and
 * every node added later, gets them from the log (or a snapshot of it).
 * The other nodes answer "not yet" until the leader's writes are applied
 * on them.  Each step tolerates having been done already, so a call that
 * lost leadership half-way is completed by the next call on any node.
 */
#include "cluster_int.h"

#include "sprig/auth.h"
#include "sprig/server.h"

#define ADMIN_GROUP "admins"

/* Is `user` an administrator on this node (applied here)?  *exists: the
 * user exists at all. */
static int
admin_present(sprig_auth *a, const char *user, bool *exists, bool *admin)
{
    sprig_identity *id = NULL;
    int rc = sprig_auth_assume(a, NULL, "user", user, &id);
    *exists = rc == 0;
    *admin = false;
    if (rc == SPRIG_ENOTFOUND) {
        return SPRIG_OK;
    }
    if (rc == 0) { /* any action on everything: '*' on "sprig" */
        *admin = sprig_identity_check(id, "cluster.admin", "sprig") == 0 &&
                 sprig_identity_check(id, "user.create", "sprig.user.x") == 0;
    }
    sprig_identity_release(id);
    return rc;
}

/* One step of the bootstrap: done already (EEXIST) counts as done. */
static int
step(int rc)
{
    return rc == SPRIG_EEXIST ? SPRIG_OK : rc;
}

/* The writes, in an order that a retry completes: the group and its
 * grant before the user (while no user exists, the next call starts
 * over), the user last joined to the group. */
static int
admin_write(sprig_auth *a, const char *user, const char *password)
{
    int rc = step(sprig_auth_group_create(a, NULL, ADMIN_GROUP));
    rc = rc ? rc : sprig_auth_group_grant(a, NULL, ADMIN_GROUP, "*", "sprig");
    rc = rc ? rc : step(sprig_auth_user_create(a, NULL, user, password));
    return rc ? rc
              : step(sprig_auth_user_group(a, NULL, user, ADMIN_GROUP, true));
}

int
sprig_cluster_bootstrap_admin(sprig_cluster *c, sprig_auth *a, const char *user,
                              const char *password)
{
    if (!c || !a || !user || !*user || !password || !*password) {
        return sprig__err(SPRIG_EINVAL, "sprig_cluster_bootstrap_admin: a "
                                        "NULL or empty argument");
    }
    bool exists, admin;
    uint64_t users = 0;
    int rc = admin_present(a, user, &exists, &admin);
    rc = rc ? rc : sprig_auth_user_count(a, &users);
    if (rc || admin) {
        return rc;
    }
    if (users > (exists ? 1u : 0u)) {
        return SPRIG_OK; /* the records have other users: not a new cluster */
    }
    return admin_write(a, user, password);
}
