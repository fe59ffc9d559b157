/*
 * cli.c -- what the commands of the `sprig` tool share: option parsing and
 * dispatch through command tables, error reporting and exit statuses,
 * opening the storage and a collection of a database, and document ids.
 * Sits between main.c / cmd_*.c and the public API; see cli.h.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <termios.h>

/* ---- errors ------------------------------------------------------------ */

/* The command being run, as typed ("sprig doc put"), for messages that
 * point to its --help; cli_dispatch() appends each name it dispatches. */
static char cmd_path[160] = "sprig";

const char *
cli_command_path(void)
{
    return cmd_path;
}

void
cli_reset_command_path(void)
{
    snprintf(cmd_path, sizeof cmd_path, "sprig");
}

static void
append_command(const char *name)
{
    size_t len = strlen(cmd_path);
    snprintf(cmd_path + len, sizeof cmd_path - len, " %s", name);
}

int
cli_usage(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sprig: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    (void)usage;
    fprintf(stderr, "\nsprig: see '%s --help'\n", cmd_path);
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
    case SPRIG_EAUTH:
    case SPRIG_EPERM: return CLI_EKEY;
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

/* Whether `arg` is an option: "-x" or "--x", but not "-" and not a
 * negative number ("-5", "-1.5"), which no option looks like. */
static bool
is_option(const char *arg)
{
    return arg[0] == '-' && arg[1] != 0 && !(arg[1] >= '0' && arg[1] <= '9') &&
           arg[1] != '.';
}

/* Copy into `out` the name of positional argument number `k` (from 0) of
 * the synopsis in `usage` (its text up to the first blank line): the
 * upper-case words and (A | B) groups outside [...] that follow the
 * command and are not an option's value.  Empty if there is none. */
static void
positional_name(const char *usage, int k, char *out, size_t n)
{
    const char *end = strstr(usage, "\n\n");
    end = end ? end : usage + strlen(usage);
    int depth = 0, found = 0;
    bool after_opt = false;
    out[0] = 0;
    for (const char *p = usage; p < end;) {
        while (p < end && (*p == ' ' || *p == '\n')) {
            p++;
        }
        const char *w = p;
        if (depth == 0 && *p == '(') {
            while (p < end && *p != ')') {
                p++;
            }
            p += p < end;
        } else {
            while (p < end && *p != ' ' && *p != '\n') {
                p++;
            }
        }
        size_t len = (size_t)(p - w);
        bool upper = len > 0 && ((*w >= 'A' && *w <= 'Z') || *w == '(');
        if (depth == 0 && upper && !after_opt && found++ == k) {
            snprintf(out, n, "%.*s", (int)len, w);
            return;
        }
        after_opt = depth == 0 && len > 1 && w[0] == '-';
        for (const char *q = w; q < p; q++) {
            depth += *q == '[' ? 1 : *q == ']' ? -1 : 0;
        }
    }
}

/* "missing argument ID" (or "missing arguments COLLECTION ID"). */
static int
missing(const char *usage, int have, int min)
{
    char names[160] = "", one[64];
    for (int k = have; k < min; k++) {
        positional_name(usage, k, one, sizeof one);
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, " %s", one);
    }
    bool named = strlen(names) > (size_t)(min - have);
    return cli_usage(usage, "missing argument%s%s", min - have > 1 ? "s" : "",
                     named ? names : "");
}

int
cli_parse(int argc, char **argv, const cli_opt *opts, const char *usage,
          int min, int max, cli_args *out)
{
    bool dashdash = false; /* after "--": positional until `max` */
    out->n = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (dashdash && out->n >= max) {
            dashdash = false;
        }
        if (!dashdash && strcmp(arg, "--") == 0) {
            dashdash = true;
        } else if (!dashdash && is_option(arg)) {
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
        return missing(usage, out->n, min);
    }
    return CLI_CONTINUE;
}

int
cli_dispatch(cli *c, const cli_cmd *cmds, int argc, char **argv,
             const char *usage)
{
    while (argc > 0 && argv[0][0] == '-' && argv[0][1] == '-' &&
           !is_help(argv[0]) && strcmp(argv[0], "--") != 0) {
        int i = 0; /* global options between a group and its command */
        int rc = cli_take_opt(NULL, argc, argv, &i, usage);
        if (rc != CLI_CONTINUE) {
            return rc;
        }
        argc -= i + 1;
        argv += i + 1;
    }
    if (argc < 1) {
        return cli_usage(usage, "missing command");
    }
    if (is_help(argv[0])) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    for (const cli_cmd *cmd = cmds; cmd->name; cmd++) {
        if (strcmp(cmd->name, argv[0]) == 0) {
            append_command(cmd->name);
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

const char cli_default_path[] = "./sprig-data";

const char *
cli_where(const cli *c)
{
    return c->url ? c->url : c->path;
}

/* 64 hex digits (colons allowed) naming no file: a SHA-256 fingerprint. */
static bool
looks_like_fingerprint(const char *s)
{
    size_t hex = 0;
    struct stat sb;
    for (const char *p = s; *p; p++) {
        if (isxdigit((unsigned char)*p)) {
            hex++;
        } else if (*p != ':') {
            return false;
        }
    }
    return hex == 64 && stat(s, &sb) != 0;
}

/* Read a line from the terminal without echo (the prompt on it) into
 * `out`: 1 read, 0 nothing read, -1 no terminal. */
static int
tty_read_secret(const char *prompt, char *out, size_t cap)
{
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty) {
        return -1;
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
    return got && out[0];
}

/* Read a passphrase from the terminal, without echo, into c->passphrase. */
static int
ask_passphrase(cli *c)
{
    int r = tty_read_secret("vault passphrase: ", c->passphrase,
                            sizeof c->passphrase);
    if (r < 0) {
        return cli_err(SPRIG_EAUTH, "--ask-passphrase needs a terminal "
                                    "(or set SPRIG_PASSPHRASE)");
    }
    return r ? CLI_CONTINUE : cli_err(SPRIG_EAUTH, "no passphrase was given");
}

/* The vault options of the storage to open (local placements). */
static int
vault_options(cli *c, sprig_storage_options *so)
{
    const char *env = getenv("SPRIG_PASSPHRASE");
    so->vault_key_file = c->vault_key;
    so->encrypt = c->encrypt;
    so->compress = c->compress;
    if (c->ask_passphrase) {
        int rc = ask_passphrase(c);
        if (rc != CLI_CONTINUE) {
            return rc;
        }
        so->vault_passphrase = c->passphrase;
    } else if (env && *env) {
        so->vault_passphrase = env;
    }
    return CLI_CONTINUE;
}

const char *
cli_where_opt(const cli *c)
{
    static char buf[4200];
    snprintf(buf, sizeof buf, "--%s %s", c->url ? "url" : "path", cli_where(c));
    return buf;
}

/* ws://HOST and wss://HOST without a port get Sprig's (5646), not 80. */
static int
url_with_port(const char *url, char *out, size_t n)
{
    const char *auth = strncmp(url, "ws://", 5) == 0    ? url + 5
                       : strncmp(url, "wss://", 6) == 0 ? url + 6
                                                        : NULL;
    size_t len = auth ? strcspn(auth, "/?#") : 0;
    const char *v6end = auth ? memchr(auth, ']', len) : NULL;
    const char *from = v6end ? v6end : auth;
    bool port = auth && memchr(from, ':', len - (size_t)(from - auth));
    int k = !auth || port || len == 0
                ? snprintf(out, n, "%s", url)
                : snprintf(out, n, "%.*s:%d%s", (int)(auth - url + len), url,
                           CLI_DEFAULT_PORT, auth + len);
    return k > 0 && (size_t)k < n ? CLI_CONTINUE
                                  : cli_err(SPRIG_EINVAL, "--url is too long");
}

/* Global options that contradict each other or do not apply. */
static int
check_placement(const cli *c)
{
    cli_format f;
    if (cli_output_format(&f) != CLI_CONTINUE) {
        return CLI_EUSAGE; /* a bad --format, before anything is done */
    }
    if (c->url && c->path != cli_default_path) {
        return cli_usage("", "--path and --url name two storages: give one");
    }
    if (c->ca_file && (!c->url || (strncmp(c->url, "wss://", 6) != 0 &&
                                   strncmp(c->url, "quic://", 7) != 0 &&
                                   strncmp(c->url, "sprig://", 8) != 0))) {
        return cli_usage("", "--ca applies to a wss://, quic:// or sprig:// "
                             "--url only");
    }
    if (!*c->dbname || (!c->url && !*c->path)) {
        return cli_err(SPRIG_EINVAL, "--%s is empty",
                       *c->dbname ? "path" : "db");
    }
    return CLI_CONTINUE;
}

/* The storage directory is held by another process: say how to reach it
 * through the server that holds it (`sprig serve` writes its URL into
 * DIR/serve.url while it runs). */
static int
busy(const cli *c)
{
    char file[4200], url[256] = "";
    snprintf(file, sizeof file, "%s/serve.url", c->path);
    FILE *f = fopen(file, "r");
    if (f) {
        if (!fgets(url, sizeof url, f)) {
            url[0] = 0;
        }
        url[strcspn(url, "\r\n")] = 0;
        fclose(f);
    }
    if (*url) {
        return cli_err(SPRIG_EBUSY,
                       "storage '%s' is held by the server at %s: reach it "
                       "through the server with --url %s",
                       c->path, url, url);
    }
    return cli_err(SPRIG_EBUSY,
                   "storage '%s' is open in another process; if a server "
                   "(sprig serve, make run) holds it, reach it through the "
                   "server with --url ws://HOST:PORT (default port %d)",
                   c->path, CLI_DEFAULT_PORT);
}

/* The login of a server placement (--user with --password-env or a
 * prompt into `pw`, or --token-file) into the open options. */
static int
login_options(cli *c, sprig_open_options *o, char *pw, size_t cap)
{
    if (c->url && c->user) {
        const char *v = c->password_env ? getenv(c->password_env) : NULL;
        if (c->password_env && !v) {
            return cli_err(SPRIG_EINVAL, "environment variable %s is not set",
                           c->password_env);
        }
        int prc = v ? (snprintf(pw, cap, "%s", v), CLI_CONTINUE)
                    : cli_prompt_password("password: ", pw, cap);
        if (prc != CLI_CONTINUE) {
            return prc;
        }
        o->user = c->user;
        o->password = pw;
    }
    o->token_file = c->url ? c->token_file : NULL;
    return CLI_CONTINUE;
}

int
cli_open(cli *c, bool create)
{
    struct stat sb;
    if (c->st) {
        return CLI_CONTINUE;
    }
    int rc = check_placement(c);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    char where[4200];
    if (c->url) {
        rc = url_with_port(c->url, where, sizeof where);
    } else if (!create && stat(c->path, &sb) != 0 && errno == ENOENT) {
        return cli_err(SPRIG_ENOTFOUND, "no storage at '%s'", c->path);
    } else if ((size_t)snprintf(where, sizeof where, "file:%s", c->path) >=
               sizeof where) {
        return cli_err(SPRIG_EINVAL, "--path is too long");
    }
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    if (c->read_only && c->url && strstr(c->url, "://") &&
        strncmp(c->url, "file://", 7) != 0) {
        return cli_err(SPRIG_EINVAL, "--read-only opens a local storage "
                                     "(--path or file:), not a server");
    }
    sprig_open_options o;
    sprig_open_options_init(&o);
    o.pinned_cert_path = c->ca_file;
    if (c->ca_file && looks_like_fingerprint(c->ca_file)) {
        o.pinned_cert_path = NULL; /* --ca SHA256 (QUIC, wss) */
        o.pinned_cert_sha256 = c->ca_file;
    }
    int src = vault_options(c, &o.storage);
    if (src != CLI_CONTINUE) {
        return src;
    }
    o.storage.read_only = c->read_only;
    o.no_follow = c->no_follow;
    o.linearizable_reads = c->linearizable;
    char pw[256] = "";
    src = login_options(c, &o, pw, sizeof pw);
    if (src != CLI_CONTINUE) {
        return src;
    }
    src = sprig_open(where, &o, &c->st);
    explicit_bzero(c->passphrase, sizeof c->passphrase);
    explicit_bzero(pw, sizeof pw);
    if (src == SPRIG_EBUSY && !c->url) {
        return busy(c);
    }
    return src ? cli_fail(src) : register_schema_file(c);
}

int
cli_prompt_password(const char *prompt, char *out, size_t cap)
{
    int r = tty_read_secret(prompt, out, cap);
    if (r < 0) {
        return cli_err(SPRIG_EINVAL, "no terminal to ask for the password: "
                                     "use --password-env VAR");
    }
    return r ? CLI_CONTINUE : cli_err(SPRIG_EINVAL, "no password given");
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
        int src = sprig_storage_open_database(c->st, c->dbname, &c->db);
        if (src) {
            return cli_fail(src);
        }
    }
    out->db = c->db;
    out->name = coll;
    return CLI_CONTINUE;
}
