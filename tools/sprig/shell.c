/*
 * shell.c -- `sprig shell` (and `sprig` with no command on a terminal):
 * an interactive shell over one storage, on libedit.  A line is a command
 * of the CLI without the `sprig` (doc list messages --limit 3), run in
 * this process on the storage opened once; global options on a line apply
 * to that line only.  The shell adds a current database (`use DB`), an
 * output format (`format json|table|csv`), history (~/.sprig_history or
 * $SPRIG_HISTORY) and tab completion of commands, subcommands, databases,
 * collections and views (looked up in the storage as you type).  Errors
 * are printed and the shell goes on; Ctrl-D or `exit` leaves it.  Part of
 * tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <editline/readline.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char shell_usage[] =
    "usage: sprig [--path DIR | --url URL] [--db NAME] shell\n"
    "\n"
    "An interactive shell on the storage (also `sprig` with no command on\n"
    "a terminal).  Type the commands of `sprig --help` without `sprig`:\n"
    "  doc list messages --limit 3\n"
    "and, of the shell itself:\n"
    "  use DB                  make DB the current database\n"
    "  format json|table|csv   how results are shown (also --format)\n"
    "  help                    this help and the commands'\n"
    "  exit, quit, Ctrl-D      leave\n"
    "Tab completes commands, databases, collections and views; history is\n"
    "kept in $SPRIG_HISTORY (default ~/.sprig_history).  Long results go\n"
    "through the pager ($SPRIG_PAGER, $PAGER or less -FRX).\n";

#define MAX_WORDS 64

/* The shell's state, for the completion callbacks (libedit's readline
 * interface takes plain functions). */
static struct {
    cli *c;
    char db[256];    /* the current database */
    char *cand[512]; /* completion candidates for the current word */
    size_t n_cand;
} sh;

/* ---- splitting a line -------------------------------------------------- */

/* Split `line` into words in `buf` (as long as the line): spaces separate
 * words, '...' and "..." quote (backslash escapes in "..." and outside).
 * Returns the number of words, or -1 for an unclosed quote. */
static int
split_words(const char *line, char *buf, char **words, int max)
{
    int n = 0;
    const char *p = line;
    char *o = buf;
    while (*p) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (!*p || n == max) {
            break;
        }
        words[n++] = o;
        char quote = 0;
        for (; *p && (quote || (*p != ' ' && *p != '\t')); p++) {
            if (quote != '\'' && *p == '\\' && p[1]) {
                *o++ = *++p;
            } else if (!quote && (*p == '\'' || *p == '"')) {
                quote = *p;
            } else if (quote && *p == quote) {
                quote = 0;
            } else {
                *o++ = *p;
            }
        }
        *o++ = 0;
        if (quote) {
            return -1;
        }
    }
    return n;
}

/* ---- completion -------------------------------------------------------- */

static const char *const shell_words[] = {"use",  "format", "help",
                                          "exit", "quit",   NULL};

/* Subcommands of each command group, for completion. */
static const char *const *
subcommands(const char *group)
{
    static const char *const doc[] = {"put",    "get",    "list",
                                      "delete", "count",  "update",
                                      "import", "export", NULL};
    static const char *const kv[] = {"get", "set", "incr", "del", "list", NULL};
    static const char *const view[] = {"query", "reduce", NULL};
    static const char *const schema[] = {"list", "define", NULL};
    static const char *const db[] = {"create", "list", "delete", NULL};
    static const char *const pubsub[] = {"subscribe", "publish", NULL};
    static const struct {
        const char *name;
        const char *const *subs;
    } groups[] = {{"doc", doc},       {"kv", kv}, {"view", view},
                  {"schema", schema}, {"db", db}, {"pubsub", pubsub}};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        if (strcmp(groups[i].name, group) == 0) {
            return groups[i].subs;
        }
    }
    return NULL;
}

static void
cand_clear(void)
{
    for (size_t i = 0; i < sh.n_cand; i++) {
        free(sh.cand[i]);
    }
    sh.n_cand = 0;
}

static void
cand_add(const char *s)
{
    if (sh.n_cand < sizeof sh.cand / sizeof sh.cand[0]) {
        char *d = strdup(s);
        if (d) {
            sh.cand[sh.n_cand++] = d;
        }
    }
}

static void
cand_add_list(const char *const *l)
{
    for (; l && *l; l++) {
        cand_add(*l);
    }
}

static void
cand_databases(void)
{
    sprig_database_list *l;
    if (sh.c->st && sprig_storage_list_databases(sh.c->st, &l) == 0) {
        for (size_t i = 0; i < sprig_database_list_count(l); i++) {
            cand_add(sprig_database_list_name(l, i));
        }
        sprig_database_list_free(l);
    }
}

/* Collections of the current database's schema (or the views of `coll`). */
static void
cand_collections(const char *coll)
{
    sprig_database_list *dl;
    sprig_schema_list *sl;
    char schema[256] = "";
    if (!sh.c->st || sprig_storage_list_databases(sh.c->st, &dl) != 0) {
        return;
    }
    for (size_t i = 0; i < sprig_database_list_count(dl); i++) {
        if (strcmp(sprig_database_list_name(dl, i), sh.db) == 0) {
            snprintf(schema, sizeof schema, "%s",
                     sprig_database_list_schema(dl, i));
        }
    }
    sprig_database_list_free(dl);
    if (sprig_storage_list_schemas(sh.c->st, &sl) != 0) {
        return;
    }
    for (size_t i = 0; i < sprig_schema_list_count(sl); i++) {
        const sprig_schema_def *s = sprig_schema_list_get(sl, i);
        for (size_t j = 0; strcmp(s->name, schema) == 0 && j < s->n_collections;
             j++) {
            const sprig_collection_def *cd = &s->collections[j];
            if (!coll) {
                cand_add(cd->name);
            }
            for (size_t v = 0;
                 coll && strcmp(cd->name, coll) == 0 && v < cd->n_views; v++) {
                cand_add(cd->views[v].name);
            }
        }
    }
    sprig_schema_list_free(sl);
}

/* Fill the candidates for word number `k` after `words`; false when the
 * word is not one the shell knows (then files are completed). */
static bool
candidates(char **words, int k)
{
    const char *prev = k > 0 ? words[k - 1] : "";
    const char *const *subs = k > 0 ? subcommands(words[0]) : NULL;
    cand_clear();
    if (strcmp(prev, "--db") == 0 || (k == 1 && strcmp(words[0], "use") == 0) ||
        (k == 2 && strcmp(words[0], "db") == 0 &&
         strcmp(words[1], "delete") == 0)) {
        cand_databases();
    } else if (strcmp(prev, "--format") == 0 ||
               (k == 1 && strcmp(words[0], "format") == 0)) {
        static const char *const f[] = {"json", "table", "csv", NULL};
        cand_add_list(f);
    } else if (k == 0) {
        for (const cli_cmd *cmd = cli_top_commands(); cmd->name; cmd++) {
            cand_add(cmd->name);
        }
        cand_add_list(shell_words);
    } else if (k == 1 && subs) {
        cand_add_list(subs);
    } else if (k == 2 && (strcmp(words[0], "doc") == 0 ||
                          strcmp(words[0], "view") == 0)) {
        cand_collections(NULL);
    } else if (k == 3 && strcmp(words[0], "view") == 0) {
        cand_collections(words[2]);
    } else {
        return false;
    }
    return true;
}

static char *
generate(const char *text, int state)
{
    static size_t next;
    next = state == 0 ? 0 : next;
    for (size_t len = strlen(text); next < sh.n_cand; next++) {
        if (strncmp(sh.cand[next], text, len) == 0) {
            return strdup(sh.cand[next++]);
        }
    }
    return NULL;
}

/* libedit's hook: the words before the cursor decide what fits. */
static char **
complete(const char *text, int start, int end)
{
    (void)end;
    char line[1024], buf[1024], *words[MAX_WORDS];
    snprintf(line, sizeof line, "%.*s", start, rl_line_buffer);
    int k = split_words(line, buf, words, MAX_WORDS);
    if (k < 0 || !candidates(words, k)) {
        return NULL;
    }
    rl_attempted_completion_over = 1;
    return rl_completion_matches(text, generate);
}

/* ---- running lines ----------------------------------------------------- */

/* Shell commands: use, format, help.  Returns CLI_CONTINUE for a line
 * that is not one. */
static int
builtin(cli *c, char **w, int n)
{
    if (strcmp(w[0], "help") == 0) {
        fputs(shell_usage, stdout);
        fputs("\nThe commands (sprig --help):\n", stdout);
        return cli_run_command(c, 1, (char *[]){"--help", NULL});
    }
    if (strcmp(w[0], "format") == 0) {
        cli_format f;
        if (n != 2 || !cli_format_parse(w[1], &f)) {
            return cli_usage(shell_usage, "format json|table|csv");
        }
        cli_output_force((int)f);
        return CLI_OK;
    }
    if (strcmp(w[0], "use") != 0) {
        return CLI_CONTINUE;
    }
    if (n != 2) {
        return cli_usage(shell_usage, "use DB");
    }
    sprig_database_list *l;
    int src = sprig_storage_list_databases(c->st, &l);
    bool found = false;
    for (size_t i = 0; src == 0 && i < sprig_database_list_count(l); i++) {
        found = found || strcmp(sprig_database_list_name(l, i), w[1]) == 0;
    }
    sprig_database_list_free(l);
    if (src || !found) {
        return src ? cli_fail(src)
                   : cli_err(SPRIG_ENOTFOUND, "no database named '%s' in '%s'",
                             w[1], cli_where(c));
    }
    snprintf(sh.db, sizeof sh.db, "%s", w[1]);
    return CLI_OK;
}

/* Commands the shell does not run, and options it does not take. */
static int
refused(char **w, int n)
{
    if (strcmp(w[0], "serve") == 0 || strcmp(w[0], "shell") == 0) {
        return cli_usage(shell_usage, "'%s' does not run inside the shell",
                         w[0]);
    }
    for (int i = 0; i < n; i++) {
        if (strncmp(w[i], "--path", 6) == 0 || strncmp(w[i], "--url", 5) == 0 ||
            strncmp(w[i], "--ca", 4) == 0) {
            return cli_usage(shell_usage,
                             "the shell's storage is %s: %s does not change it "
                             "(start another shell)",
                             cli_where(sh.c), w[i]);
        }
    }
    return CLI_CONTINUE;
}

/* Run one line; the line's global options last for the line only. */
static int
run_line(cli *c, char **w, int n)
{
    int rc = refused(w, n);
    rc = rc == CLI_CONTINUE ? builtin(c, w, n) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    cli saved = *c;
    c->dbname = sh.db;
    int i = 0; /* global options before the command */
    while (rc == CLI_CONTINUE && i < n && w[i][0] == '-' &&
           strcmp(w[i], "--help") != 0) {
        rc = cli_take_opt(NULL, n, w, &i, shell_usage);
        i++;
    }
    if (rc == CLI_CONTINUE) {
        cli_reset_command_path();
        rc = cli_run_command(c, n - i, w + i);
    }
    sprig_db_close(c->db);
    c->db = NULL;
    c->dbname = saved.dbname;
    c->format = saved.format;
    c->schema_file = saved.schema_file;
    return rc;
}

/* ---- the loop ---------------------------------------------------------- */

/* Ctrl-C at the prompt drops the line, not the shell. */
static volatile sig_atomic_t interrupted;

static void
on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static const char *
history_file(char *buf, size_t n)
{
    const char *f = getenv("SPRIG_HISTORY");
    const char *home = getenv("HOME");
    if (f) {
        return *f ? f : NULL;
    }
    if (!home) {
        return NULL;
    }
    snprintf(buf, n, "%s/.sprig_history", home);
    return buf;
}

static void
loop(cli *c)
{
    char prompt[300], buf[4096], *words[MAX_WORDS];
    for (;;) {
        snprintf(prompt, sizeof prompt, "sprig:%s> ", sh.db);
        interrupted = 0;
        char *line = readline(prompt);
        if (!line && interrupted) {
            fputc('\n', stdout);
            continue;
        }
        if (!line) {
            fputc('\n', stdout);
            break;
        }
        int n = strlen(line) < sizeof buf
                    ? split_words(line, buf, words, MAX_WORDS)
                    : -2;
        if (n > 0) {
            add_history(line);
        }
        free(line);
        if (n == -1 || n == -2) {
            fprintf(stderr, "sprig: %s\n",
                    n == -1 ? "unclosed quote" : "the line is too long");
        } else if (n > 0 && (strcmp(words[0], "exit") == 0 ||
                             strcmp(words[0], "quit") == 0)) {
            break;
        } else if (n > 0) {
            run_line(c, words, n);
        }
        fflush(stdout);
    }
}

int
cli_cmd_shell(cli *c, int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(argc, argv, NULL, shell_usage, 0, 0, &a);
    rc = rc == CLI_CONTINUE ? cli_open(c, false) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sh.c = c;
    snprintf(sh.db, sizeof sh.db, "%s", c->dbname);
    char hbuf[4200];
    const char *hist = history_file(hbuf, sizeof hbuf);
    rl_readline_name = "sprig";
    rl_attempted_completion_function = complete;
    using_history();
    stifle_history(1000);
    if (hist) {
        read_history(hist);
    }
    printf("Sprig %s shell on %s (database '%s'); help for help, Ctrl-D "
           "leaves\n",
           sprig_version(), cli_where(c), sh.db);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint; /* no SA_RESTART: the read returns */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    loop(c);
    sigaction(SIGINT, &old, NULL);
    if (hist) {
        write_history(hist);
    }
    cand_clear();
    return CLI_OK;
}
