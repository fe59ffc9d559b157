/*
 * cmd_admin.c -- `sprig admin ...`: users, roles, permission groups and
 * tokens of a local storage (issue 10), through the permission engine of
 * include/sprig/auth.h on the storage at --path.  Run by whoever may read
 * the storage's files, it is the way in for the first administrator (the
 * changes are made as the program, unchecked).  Passwords come from an
 * environment variable (--password-env VAR) or a prompt on the terminal,
 * never from the command line; a token's secret goes to a file (mode 0600),
 * never to stdout.  Part of tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <sprig/auth.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char admin_usage[] =
    "usage: sprig --path DIR admin COMMAND ...\n"
    "\n"
    "Users, roles, permission groups and tokens of the storage at --path\n"
    "(the server reads them; a change applies to sessions on their next\n"
    "request).  Passwords come from --password-env VAR or a prompt.\n"
    "\n"
    "  admin user create NAME [--password] [--password-env VAR]\n"
    "  admin user set-password NAME [--password-env VAR]\n"
    "  admin user delete NAME\n"
    "  admin user add-group|remove-group NAME GROUP\n"
    "  admin user add-role|remove-role NAME ROLE\n"
    "  admin role create NAME\n"
    "  admin role add-group|remove-group ROLE GROUP\n"
    "  admin group create NAME\n"
    "  admin group grant GROUP ACTIONS RESOURCE\n"
    "      ACTIONS: patterns separated by ',' (\"*\", \"kv\", "
    "\"document.get\");\n"
    "      RESOURCE: a resource-name pattern (\"sprig\" = everything,\n"
    "      \"sprig.db.app\", \"sprig.db.*.keyvalue.cache\")\n"
    "  admin group revoke GROUP RESOURCE\n"
    "  admin token create USER --out FILE\n"
    "      write \"ID:SECRET\" to FILE (mode 0600) for --token-file\n"
    "  admin token delete ID\n"
    "\n"
    "The first administrator:\n"
    "  sprig --path DIR admin user create admin --password\n"
    "  sprig --path DIR admin group create admins\n"
    "  sprig --path DIR admin group grant admins '*' sprig\n"
    "  sprig --path DIR admin user add-group admin admins\n"
    "\n"
    "--hash-cost min (tests only: the cheapest argon2id) or default.\n";

/* The engine over the local storage. */
static int
open_auth(cli *c, const char *cost, sprig_auth **a)
{
    if (c->url) {
        return cli_usage(admin_usage, "admin works on a local storage: give "
                                      "--path DIR, not --url");
    }
    sprig_auth_options o;
    if (cost && strcmp(cost, "min") == 0) {
        sprig_auth_options_min(&o);
    } else if (!cost || strcmp(cost, "default") == 0) {
        sprig_auth_options_init(&o);
    } else {
        return cli_usage(admin_usage, "--hash-cost is min or default");
    }
    int rc = cli_open(c, true);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    rc = sprig_auth_open(c->st, &o, a);
    return rc ? cli_fail(rc) : CLI_CONTINUE;
}

static int
done(sprig_auth *a, int rc, const char *what, const char *name)
{
    sprig_auth_free(a);
    if (rc) {
        return cli_fail(rc);
    }
    printf("{\"%s\":\"%s\",\"ok\":true}\n", what, name);
    return CLI_OK;
}

/* The password: $VAR, or read from the terminal without echo. */
static int
get_password(const char *env, char *out, size_t cap)
{
    if (env) {
        const char *v = getenv(env);
        if (!v) {
            return cli_err(SPRIG_EINVAL, "environment variable %s is not set",
                           env);
        }
        snprintf(out, cap, "%s", v);
        return CLI_CONTINUE;
    }
    return cli_prompt_password("password: ", out, cap);
}

typedef struct parsed {
    cli_args a;
    const char *pw_env, *cost, *out;
    bool password;
} parsed;

static int
parse(int argc, char **argv, int n, parsed *p)
{
    const cli_opt opts[] = {
        {"--password", NULL, &p->password},
        {"--password-env", &p->pw_env, NULL},
        {"--hash-cost", &p->cost, NULL},
        {"--out", &p->out, NULL},
        {NULL, NULL, NULL},
    };
    return cli_parse(argc, argv, opts, admin_usage, n, n, &p->a);
}

static int
user_cmd(cli *c, int argc, char **argv)
{
    parsed p = {0};
    const char *sub = argc > 1 ? argv[1] : "";
    bool two = strstr(sub, "-group") || strstr(sub, "-role");
    int rc = parse(argc - 1, argv + 1, two ? 2 : 1, &p);
    sprig_auth *a = NULL;
    rc = rc == CLI_CONTINUE ? open_auth(c, p.cost, &a) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    const char *name = p.a.pos[0];
    char pw[256] = "";
    bool wants_pw = strcmp(sub, "set-password") == 0 ||
                    (strcmp(sub, "create") == 0 && (p.password || p.pw_env));
    if (wants_pw &&
        (rc = get_password(p.pw_env, pw, sizeof pw)) != CLI_CONTINUE) {
        sprig_auth_free(a);
        return rc;
    }
    if (strcmp(sub, "create") == 0) {
        rc = sprig_auth_user_create(a, NULL, name, wants_pw ? pw : NULL);
    } else if (strcmp(sub, "set-password") == 0) {
        rc = sprig_auth_user_set_password(a, NULL, name, pw);
    } else if (strcmp(sub, "delete") == 0) {
        rc = sprig_auth_user_delete(a, NULL, name);
    } else if (strstr(sub, "-group")) {
        rc = sprig_auth_user_group(a, NULL, name, p.a.pos[1], sub[0] == 'a');
    } else {
        rc = sprig_auth_user_role(a, NULL, name, p.a.pos[1], sub[0] == 'a');
    }
    explicit_bzero(pw, sizeof pw);
    return done(a, rc, "user", name);
}

static int
role_cmd(cli *c, int argc, char **argv)
{
    parsed p = {0};
    const char *sub = argc > 1 ? argv[1] : "";
    bool create = strcmp(sub, "create") == 0;
    int rc = parse(argc - 1, argv + 1, create ? 1 : 2, &p);
    sprig_auth *a = NULL;
    rc = rc == CLI_CONTINUE ? open_auth(c, p.cost, &a) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    rc = create ? sprig_auth_role_create(a, NULL, p.a.pos[0])
                : sprig_auth_role_group(a, NULL, p.a.pos[0], p.a.pos[1],
                                        sub[0] == 'a');
    return done(a, rc, "role", p.a.pos[0]);
}

static int
group_cmd(cli *c, int argc, char **argv)
{
    parsed p = {0};
    const char *sub = argc > 1 ? argv[1] : "";
    int n = strcmp(sub, "create") == 0 ? 1 : strcmp(sub, "grant") == 0 ? 3 : 2;
    int rc = parse(argc - 1, argv + 1, n, &p);
    sprig_auth *a = NULL;
    rc = rc == CLI_CONTINUE ? open_auth(c, p.cost, &a) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    char **pos = p.a.pos;
    rc = n == 1   ? sprig_auth_group_create(a, NULL, pos[0])
         : n == 3 ? sprig_auth_group_grant(a, NULL, pos[0], pos[1], pos[2])
                  : sprig_auth_group_revoke(a, NULL, pos[0], pos[1]);
    return done(a, rc, "group", pos[0]);
}

/* Write "ID:SECRET\n" to a new file only its owner can read. */
static int
write_token(const char *path, const char *id, const char *secret)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        return cli_err(SPRIG_EIO, "cannot create %s: %s", path,
                       strerror(errno));
    }
    char line[128];
    int n = snprintf(line, sizeof line, "%s:%s\n", id, secret);
    bool ok = write(fd, line, (size_t)n) == n;
    explicit_bzero(line, sizeof line);
    ok = close(fd) == 0 && ok;
    return ok ? CLI_CONTINUE : cli_err(SPRIG_EIO, "cannot write %s", path);
}

static int
token_cmd(cli *c, int argc, char **argv)
{
    parsed p = {0};
    const char *sub = argc > 1 ? argv[1] : "";
    int rc = parse(argc - 1, argv + 1, 1, &p);
    if (rc == CLI_CONTINUE && strcmp(sub, "create") == 0 && !p.out) {
        return cli_usage(admin_usage, "token create needs --out FILE");
    }
    sprig_auth *a = NULL;
    rc = rc == CLI_CONTINUE ? open_auth(c, p.cost, &a) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    if (strcmp(sub, "delete") == 0) {
        return done(a, sprig_auth_token_delete(a, NULL, p.a.pos[0]), "token",
                    p.a.pos[0]);
    }
    char id[SPRIG_TOKEN_ID_LEN + 1], secret[SPRIG_TOKEN_SECRET_LEN + 1];
    rc = sprig_auth_token_create(a, NULL, p.a.pos[0], id, secret);
    sprig_auth_free(a);
    if (rc) {
        return cli_fail(rc);
    }
    rc = write_token(p.out, id, secret);
    explicit_bzero(secret, sizeof secret);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    printf("{\"token\":\"%s\",\"user\":\"%s\",\"file\":\"%s\"}\n", id,
           p.a.pos[0], p.out);
    return CLI_OK;
}

/* A group's command table: `sub` must be one of `subs`. */
static int
check_sub(int argc, char **argv, const char *const *subs)
{
    for (; *subs; subs++) {
        if (argc > 1 && strcmp(argv[1], *subs) == 0) {
            return CLI_CONTINUE;
        }
    }
    if (argc > 1 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(admin_usage, stdout);
        return CLI_OK;
    }
    return cli_usage(admin_usage, "unknown command 'admin %s %s'", argv[0],
                     argc > 1 ? argv[1] : "");
}

static int
admin_user(cli *c, int argc, char **argv)
{
    static const char *const subs[] = {
        "create",       "set-password", "delete",      "add-group",
        "remove-group", "add-role",     "remove-role", NULL};
    int rc = check_sub(argc, argv, subs);
    return rc == CLI_CONTINUE ? user_cmd(c, argc, argv) : rc;
}

static int
admin_role(cli *c, int argc, char **argv)
{
    static const char *const subs[] = {"create", "add-group", "remove-group",
                                       NULL};
    int rc = check_sub(argc, argv, subs);
    return rc == CLI_CONTINUE ? role_cmd(c, argc, argv) : rc;
}

static int
admin_group(cli *c, int argc, char **argv)
{
    static const char *const subs[] = {"create", "grant", "revoke", NULL};
    int rc = check_sub(argc, argv, subs);
    return rc == CLI_CONTINUE ? group_cmd(c, argc, argv) : rc;
}

static int
admin_token(cli *c, int argc, char **argv)
{
    static const char *const subs[] = {"create", "delete", NULL};
    int rc = check_sub(argc, argv, subs);
    return rc == CLI_CONTINUE ? token_cmd(c, argc, argv) : rc;
}

static const cli_cmd admin_cmds[] = {
    {"user", admin_user},   {"role", admin_role}, {"group", admin_group},
    {"token", admin_token}, {NULL, NULL},
};

int
cli_cmd_admin(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, admin_cmds, argc - 1, argv + 1, admin_usage);
}
