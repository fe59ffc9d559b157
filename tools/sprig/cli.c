/*
 * cli.c -- what the commands of the `sprig` tool share: option parsing and
 * dispatch through command tables, error reporting and exit statuses,
 * opening the storage and a collection of a database, and document ids.
 * Sits between main.c / cmd_*.c and the public API; see cli.h.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <termios.h>

/* ---- errors ------------------------------------------------------------ */

int
cli_usage(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sprig: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n\n", stderr);
    va_end(ap);
    fputs(usage, stderr);
    return CLI_EUSAGE;
}

int
cli_exit_status(int rc)
{
    switch (rc) {
    case SPRIG_OK: return CLI_OK;
    case SPRIG_EINVAL: return CLI_EUSAGE;
    case SPRIG_ENOTFOUND: return CLI_ENOTFOUND;
    case SPRIG_ECONFLICT:
    case SPRIG_EEXIST: return CLI_ECONFLICT;
    case SPRIG_EBUSY: return CLI_EBUSY;
    default: return CLI_EFAIL;
    }
}

int
cli_err(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sprig: %s: ", sprig_strerror(rc));
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return cli_exit_status(rc);
}

int
cli_fail(int rc)
{
    return cli_err(rc, "%s", sprig_errmsg());
}

/* ---- parsing ----------------------------------------------------------- */

static const cli_opt *global_opts;

void
cli_set_globals(const cli_opt *globals)
{
    global_opts = globals;
}

/* The option of `opts` named like `arg` (up to '=' if any), or NULL. */
static const cli_opt *
find_opt(const cli_opt *opts, const char *arg, size_t n)
{
    for (const cli_opt *o = opts; o && o->name; o++) {
        if (strlen(o->name) == n && strncmp(arg, o->name, n) == 0) {
            return o;
        }
    }
    return NULL;
}

static bool
is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int
cli_take_opt(const cli_opt *opts, int argc, char **argv, int *i,
             const char *usage)
{
    const char *arg = argv[*i];
    if (is_help(arg)) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    const cli_opt *o = find_opt(opts, arg, n);
    o = o ? o : find_opt(global_opts, arg, n);
    if (!o) {
        return cli_usage(usage, "unknown option '%s'", arg);
    }
    if (o->flag) {
        if (eq) {
            return cli_usage(usage, "option %s takes no value", o->name);
        }
        *o->flag = true;
    } else if (eq) {
        *o->value = eq + 1;
    } else if (*i + 1 < argc) {
        *o->value = argv[++*i];
    } else {
        return cli_usage(usage, "option %s needs a value", o->name);
    }
    return CLI_CONTINUE;
}

int
cli_parse(int argc, char **argv, const cli_opt *opts, const char *usage,
          int min, int max, cli_args *out)
{
    bool options = true;
    out->n = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options && strcmp(arg, "--") == 0) {
            options = false;
        } else if (options && arg[0] == '-' && arg[1] != 0) {
            int rc = cli_take_opt(opts, argc, argv, &i, usage);
            if (rc != CLI_CONTINUE) {
                return rc;
            }
        } else if (out->n < max && out->n < CLI_MAX_POS) {
            out->pos[out->n++] = argv[i];
        } else {
            return cli_usage(usage, "unexpected argument '%s'", arg);
        }
    }
    if (out->n < min) {
        return cli_usage(usage, "missing argument%s",
                         min - out->n > 1 ? "s" : "");
    }
    return CLI_CONTINUE;
}

int
cli_dispatch(cli *c, const cli_cmd *cmds, int argc, char **argv,
             const char *usage)
{
    if (argc < 1) {
        return cli_usage(usage, "missing command");
    }
    if (is_help(argv[0])) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    for (const cli_cmd *cmd = cmds; cmd->name; cmd++) {
        if (strcmp(cmd->name, argv[0]) == 0) {
            return cmd->run(c, argc, argv);
        }
    }
    return cli_usage(usage, "unknown %s '%s'",
                     argv[0][0] == '-' ? "option" : "command", argv[0]);
}

bool
cli_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

int
cli_parse_id(const cli_coll *cc, const char *arg, cli_id *out)
{
    if (cc->kind == SPRIG_ID_NATURAL) {
        out->bytes = sprig_str(arg);
        return CLI_CONTINUE;
    }
    uint64_t n;
    if (!cli_parse_uint(arg, UINT64_MAX, &n)) {
        return cli_err(SPRIG_EINVAL,
                       "id '%s' is not a decimal u64 (collection '%s' has "
                       "u64 ids)",
                       arg, cc->name);
    }
    out->bytes = sprig_id_u64(n, out->u64);
    return CLI_CONTINUE;
}

/* ---- opening ----------------------------------------------------------- */

/* The global --schema FILE: load it and register it with the storage. */
static int
register_schema_file(cli *c)
{
    sprig_schema_def *s = NULL;
    if (!c->schema_file) {
        return CLI_CONTINUE;
    }
    int rc = sprig_schema_load_json(c->schema_file, &s);
    rc = rc ? rc : sprig_storage_register_schema(c->st, s);
    sprig_schema_free(s);
    return rc ? cli_fail(rc) : CLI_CONTINUE;
}

const char *
cli_where(const cli *c)
{
    return c->url ? c->url : c->path;
}

int
cli_open(cli *c, bool create)
{
    struct stat sb;
    if (c->st) {
        return CLI_CONTINUE;
    }
    if (!*c->dbname || (!c->url && !*c->path)) {
        return cli_err(SPRIG_EINVAL, "--%s is empty",
                       *c->dbname ? "path" : "db");
    }
    char file[4200];
    if (!c->url) {
        if (!create && stat(c->path, &sb) != 0 && errno == ENOENT) {
            return cli_err(SPRIG_ENOTFOUND, "no storage at '%s'", c->path);
        }
        if ((size_t)snprintf(file, sizeof file, "file:%s", c->path) >=
            sizeof file) {
            return cli_err(SPRIG_EINVAL, "--path is too long");
        }
    }
    sprig_open_options o;
    sprig_open_options_init(&o);
    o.pinned_cert_path = c->ca_file;
    char pw[256] = "";
    if (c->url && c->user) {
        const char *v = c->password_env ? getenv(c->password_env) : NULL;
        if (c->password_env && !v) {
            return cli_err(SPRIG_EINVAL, "environment variable %s is not set",
                           c->password_env);
        }
        int prc = v ? (snprintf(pw, sizeof pw, "%s", v), CLI_CONTINUE)
                    : cli_prompt_password("password: ", pw, sizeof pw);
        if (prc != CLI_CONTINUE) {
            return prc;
        }
        o.user = c->user;
        o.password = pw;
    }
    o.token_file = c->url ? c->token_file : NULL;
    int rc = sprig_open(c->url ? c->url : file, &o, &c->st);
    explicit_bzero(pw, sizeof pw);
    return rc ? cli_fail(rc) : register_schema_file(c);
}

int
cli_prompt_password(const char *prompt, char *out, size_t cap)
{
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty) {
        return cli_err(SPRIG_EINVAL, "no terminal to ask for the password: "
                                     "use --password-env VAR");
    }
    struct termios old, quiet;
    bool echo_off = tcgetattr(fileno(tty), &old) == 0;
    if (echo_off) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    }
    fputs(prompt, tty);
    fflush(tty);
    bool got = fgets(out, (int)cap, tty) != NULL;
    if (echo_off) {
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
    }
    fputc('\n', tty);
    fclose(tty);
    out[got ? strcspn(out, "\r\n") : 0] = 0;
    return got ? CLI_CONTINUE : cli_err(SPRIG_EINVAL, "no password given");
}

void
cli_close(cli *c)
{
    sprig_db_close(c->db);
    c->db = NULL;
    sprig_storage_close(c->st); /* a server's storage closes its client */
    c->st = NULL;
}

/* The schema of database `name`, copied into `schema`. */
static int
db_schema(cli *c, const char *name, char *schema, size_t n)
{
    sprig_database_list *l;
    int rc = sprig_storage_list_databases(c->st, &l);
    if (rc) {
        return cli_fail(rc);
    }
    bool found = false;
    for (size_t i = 0; i < sprig_database_list_count(l); i++) {
        if (strcmp(sprig_database_list_name(l, i), name) == 0) {
            snprintf(schema, n, "%s", sprig_database_list_schema(l, i));
            found = true;
        }
    }
    sprig_database_list_free(l);
    return found ? CLI_CONTINUE
                 : cli_err(SPRIG_ENOTFOUND, "no database named '%s' in '%s'",
                           name, cli_where(c));
}

/* The id kind of collection `coll` of schema `schema`. */
static int
coll_kind(cli *c, const char *schema, const char *coll, sprig_id_kind *out)
{
    sprig_schema_list *l;
    int rc = sprig_storage_list_schemas(c->st, &l);
    if (rc) {
        return cli_fail(rc);
    }
    bool found = false;
    for (size_t i = 0; i < sprig_schema_list_count(l); i++) {
        const sprig_schema_def *s = sprig_schema_list_get(l, i);
        for (size_t j = 0; strcmp(s->name, schema) == 0 && j < s->n_collections;
             j++) {
            if (strcmp(s->collections[j].name, coll) == 0) {
                *out = s->collections[j].id_kind;
                found = true;
            }
        }
    }
    sprig_schema_list_free(l);
    return found
               ? CLI_CONTINUE
               : cli_err(SPRIG_ESCHEMA, "collection '%s' is not in schema '%s'",
                         coll, schema);
}

int
cli_open_coll(cli *c, const char *coll, cli_coll *out)
{
    char schema[256];
    int rc = cli_open(c, false);
    rc = rc == CLI_CONTINUE ? db_schema(c, c->dbname, schema, sizeof schema)
                            : rc;
    rc = rc == CLI_CONTINUE ? coll_kind(c, schema, coll, &out->kind) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    if (!c->db) {
        int src = sprig_storage_database(c->st, c->dbname, &c->db);
        if (src) {
            return cli_fail(src);
        }
    }
    out->db = c->db;
    out->name = coll;
    return CLI_CONTINUE;
}
