/*
 * cmd_admin.c -- `sprig admin ...`: users, roles, permission groups and
 * tokens (issue 10).  With --path DIR the changes are made on that local
 * storage through the permission engine of include/sprig/auth.h, as the
 * program, unchecked: run by whoever may read the storage's files, it is
 * the way in for the first administrator.  With --url URL (a running
 * server) they are sent as the admin.* requests (docs/protocol.md,
 * "Administration"), as the user logged in with --user or --token-file,
 * and the server checks that user's permissions.  Either way a command
 * builds one sprig_admin_change.  Passwords come from an environment
 * variable (--password-env VAR after the command) or a prompt on the
 * terminal, never from the command line; a token's secret goes to a file
 * (mode 0600), never to stdout.  Part of tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <sprig/auth.h>
#include <sprig/client.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char admin_usage[] =
    "usage: sprig --path DIR admin COMMAND ...\n"
    "       sprig --url URL --user ADMIN [--password-env VAR] admin COMMAND "
    "...\n"
    "\n"
    "Users, roles, permission groups and tokens: of the storage at --path\n"
    "(the server need not run: the changes are made as the program), or of\n"
    "the running server at --url, as the user logged in with --user or\n"
    "--token-file (the server checks that it may: user.create on\n"
    "sprig.user.NAME, group.grant on sprig.group.NAME, ...).  A change\n"
    "applies to every session on its next request.  A new password comes\n"
    "from --password-env VAR given after the command, or a prompt (the\n"
    "login's --password-env goes before the command).\n"
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
    "Then, with the server running, e.g.:\n"
    "  sprig --url ws://HOST:PORT --user admin admin user create bob "
    "--password\n"
    "\n"
    "--hash-cost min (tests only: the cheapest argon2id) or default, with\n"
    "--path (a server hashes at its own cost).\n";

/* Is --url a server (not a local storage spelled as a URL)? */
static bool
remote(const cli *c)
{
    return c->url && strstr(c->url, "://") && strncmp(c->url, "file:", 5);
}

/* The engine over the local storage. */
static int
open_auth(cli *c, const char *cost, sprig_auth **a)
{
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

/* Make change `ch`: on the server at --url as the logged-in user, or on
 * the local storage as the program.  `tok`: a created token. */
static int
apply(cli *c, const char *cost, const sprig_admin_change *ch,
      sprig_admin_token *tok)
{
    int rc;
    if (remote(c)) {
        if (cost) {
            return cli_usage(admin_usage, "--hash-cost goes with --path: a "
                                          "server hashes at its own cost");
        }
        rc = cli_open(c, false); /* logs in: --user, --token-file */
        int src = rc == CLI_CONTINUE ? sprig_client_admin(c->st, ch, tok) : 0;
        return src ? cli_fail(src) : rc;
    }
    sprig_auth *a = NULL;
    rc = open_auth(c, cost, &a);
    int src = rc == CLI_CONTINUE ? sprig_auth_apply(a, NULL, ch, tok) : 0;
    sprig_auth_free(a);
    return src ? cli_fail(src) : rc;
}

static int
done(int rc, const char *what, const char *name)
{
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    printf("{\"%s\":\"%s\",\"ok\":true}\n", what, name);
    return CLI_OK;
}

/* The new password of user `name`: $VAR, or read from the terminal
 * without echo. */
static int
get_password(const char *env, const char *name, char *out, size_t cap)
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
    char prompt[128];
    snprintf(prompt, sizeof prompt, "new password for %s: ", name);
    return cli_prompt_password(prompt, out, cap);
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

/* The op of `admin user SUB`. */
static sprig_admin_op
user_op(const char *sub)
{
    if (strcmp(sub, "create") == 0) {
        return SPRIG_ADMIN_USER_CREATE;
    }
    if (strcmp(sub, "set-password") == 0) {
        return SPRIG_ADMIN_USER_SET_PASSWORD;
    }
    if (strcmp(sub, "delete") == 0) {
        return SPRIG_ADMIN_USER_DELETE;
    }
    return strstr(sub, "-group") ? SPRIG_ADMIN_USER_GROUP
                                 : SPRIG_ADMIN_USER_ROLE;
}

static int
user_cmd(cli *c, int argc, char **argv)
{
    parsed p = {0};
    const char *sub = argc > 1 ? argv[1] : "";
    sprig_admin_op op = user_op(sub);
    bool two = op == SPRIG_ADMIN_USER_GROUP || op == SPRIG_ADMIN_USER_ROLE;
    int rc = parse(argc - 1, argv + 1, two ? 2 : 1, &p);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_admin_change ch = {
        op,   p.a.pos[0], NULL,         two ? p.a.pos[1] : NULL,
        NULL, NULL,       sub[0] == 'a'};
    char pw[256] = "";
    bool wants_pw = op == SPRIG_ADMIN_USER_SET_PASSWORD ||
                    (op == SPRIG_ADMIN_USER_CREATE && (p.password || p.pw_env));
    rc = wants_pw ? get_password(p.pw_env, ch.name, pw, sizeof pw) : rc;
    ch.password = wants_pw ? pw : NULL;
    rc = rc == CLI_CONTINUE ? apply(c, p.cost, &ch, NULL) : rc;
    explicit_bzero(pw, sizeof pw);
    return done(rc, "user", ch.name);
}

static int
role_cmd(cli *c, int argc, char **argv)
{
    parsed p = {0};
    const char *sub = argc > 1 ? argv[1] : "";
    bool create = strcmp(sub, "create") == 0;
    int rc = parse(argc - 1, argv + 1, create ? 1 : 2, &p);
    sprig_admin_change ch = {create ? SPRIG_ADMIN_ROLE_CREATE
                                    : SPRIG_ADMIN_ROLE_GROUP,
                             p.a.pos[0],
                             NULL,
                             create ? NULL : p.a.pos[1],
                             NULL,
                             NULL,
                             sub[0] == 'a'};
    rc = rc == CLI_CONTINUE ? apply(c, p.cost, &ch, NULL) : rc;
    return done(rc, "role", ch.name);
}

static int
group_cmd(cli *c, int argc, char **argv)
{
    parsed p = {0};
    const char *sub = argc > 1 ? argv[1] : "";
    int n = strcmp(sub, "create") == 0 ? 1 : strcmp(sub, "grant") == 0 ? 3 : 2;
    int rc = parse(argc - 1, argv + 1, n, &p);
    char **pos = p.a.pos;
    sprig_admin_change ch = {n == 1   ? SPRIG_ADMIN_GROUP_CREATE
                             : n == 3 ? SPRIG_ADMIN_GROUP_GRANT
                                      : SPRIG_ADMIN_GROUP_REVOKE,
                             pos[0],
                             NULL,
                             NULL,
                             n == 3 ? pos[1] : NULL,
                             n == 3 ? pos[2] : pos[1],
                             true};
    rc = rc == CLI_CONTINUE ? apply(c, p.cost, &ch, NULL) : rc;
    return done(rc, "group", pos[0]);
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
    bool create = strcmp(sub, "create") == 0;
    int rc = parse(argc - 1, argv + 1, 1, &p);
    if (rc == CLI_CONTINUE && create && !p.out) {
        return cli_usage(admin_usage, "token create needs --out FILE");
    }
    sprig_admin_change ch = {create ? SPRIG_ADMIN_TOKEN_CREATE
                                    : SPRIG_ADMIN_TOKEN_DELETE,
                             p.a.pos[0]};
    sprig_admin_token tok;
    rc = rc == CLI_CONTINUE ? apply(c, p.cost, &ch, &tok) : rc;
    if (!create || rc != CLI_CONTINUE) {
        return done(rc, "token", ch.name);
    }
    rc = write_token(p.out, tok.id, tok.secret);
    explicit_bzero(tok.secret, sizeof tok.secret);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    printf("{\"token\":\"%s\",\"user\":\"%s\",\"file\":\"%s\"}\n", tok.id,
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
