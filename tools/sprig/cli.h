/*
 * cli.h -- private header of the `sprig` command-line tool (tools/sprig/).
 *
 * The tool sits on top of the public API (include/sprig/sprig.h) and nothing
 * else of the library: main.c parses the global options and dispatches
 * through command tables (cli_cmd) to cmd_schema.c, cmd_db.c, cmd_doc.c,
 * cmd_kv.c and demo.c; cli.c holds what they share (option parsing, errors and
 * exit codes, opening the storage, ids); json.c writes the JSON they print.
 * Every command function returns the process exit status.
 */
#ifndef SPRIG_TOOLS_CLI_H
#define SPRIG_TOOLS_CLI_H

#include <sprig/sprig.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses (documented in `sprig --help`). */
enum {
    CLI_OK = 0,
    CLI_EFAIL = 1,     /* any other error */
    CLI_EUSAGE = 2,    /* bad command line, or an argument the library
                          rejects as malformed (SPRIG_EINVAL) */
    CLI_ENOTFOUND = 3, /* SPRIG_ENOTFOUND */
    CLI_ECONFLICT = 4, /* SPRIG_ECONFLICT, SPRIG_EEXIST */
    CLI_EBUSY = 5      /* SPRIG_EBUSY: another process has the storage */
};

/* cli_parse() and friends return this when the command should go on. */
#define CLI_CONTINUE (-1)

/* Most positional arguments any command takes. */
#define CLI_MAX_POS 64

/* The state of one invocation. */
typedef struct cli {
    const char *prog;         /* how the tool was invoked (argv[0]) */
    const char *path;         /* --path */
    const char *dbname;       /* --db */
    const char *url;          /* --url: any placement sprig_open() takes */
    const char *ca_file;      /* --ca: wss, the certificate to trust */
    const char *schema_file;  /* --schema: registered by cli_open() */
    const char *user;         /* --user: log in (a server) as this user */
    const char *password_env; /* --password-env VAR: its password */
    const char *token_file;   /* --token-file FILE: log in with a token */
    sprig_storage *st;        /* opened by cli_open() */
    sprig_db *db;             /* opened by cli_open_coll() */
} cli;

/* One command of a command table; tables end with a zeroed entry.  `run`
 * gets argv[0] = the command's name. */
typedef struct cli_cmd {
    const char *name;
    int (*run)(cli *c, int argc, char **argv);
} cli_cmd;

/* One option of a command; tables end with a zeroed entry.  Exactly one of
 * `value` (an option taking a value: --id ID or --id=ID) and `flag`. */
typedef struct cli_opt {
    const char *name;
    const char **value;
    bool *flag;
} cli_opt;

/* Arguments left after the options. */
typedef struct cli_args {
    char *pos[CLI_MAX_POS];
    int n;
} cli_args;

/* ---- cli.c: parsing, errors, opening ----------------------------------- */

/* Print "sprig: <problem>" and `usage` on stderr; returns CLI_EUSAGE. */
int cli_usage(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print "sprig: <sprig_strerror(rc)>: <detail>" on stderr; returns the exit
 * status for `rc`. */
int cli_err(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* cli_err() with the library's sprig_errmsg() as the detail. */
int cli_fail(int rc);
/* The exit status for a SPRIG_E* code. */
int cli_exit_status(int rc);

/* The global options (--path, --db, --url, --ca, --schema), accepted after
 * the command too: cli_take_opt() falls back to them when the command has
 * no option of that name (the command's own option wins: `db create NAME
 * --schema SCHEMA`).  `globals` must outlive the parsing. */
void cli_set_globals(const cli_opt *globals);

/* Handle the option at argv[*i] (advancing *i past its value): --help
 * prints `usage` and returns CLI_OK; unknown options (neither the
 * command's nor global) are usage errors. */
int cli_take_opt(const cli_opt *opts, int argc, char **argv, int *i,
                 const char *usage);
/* Parse argv[1..] (argv[0] is the command) into options and between
 * `min` and `max` positional arguments.  "--" ends the options; "-" is a
 * positional argument.  Returns CLI_CONTINUE, or the exit status. */
int cli_parse(int argc, char **argv, const cli_opt *opts, const char *usage,
              int min, int max, cli_args *out);
/* Run the command of `cmds` named by argv[0]. */
int cli_dispatch(cli *c, const cli_cmd *cmds, int argc, char **argv,
                 const char *usage);

/* Open the storage with sprig_open(): c->url if given, else the directory
 * c->path (as file:PATH).  Unless `create`, a missing directory is
 * SPRIG_ENOTFOUND rather than a new storage.  Returns CLI_CONTINUE or the
 * exit status (after printing the error). */
int cli_open(cli *c, bool create);
/* Where the storage is, for messages: the URL, else the path. */
const char *cli_where(const cli *c);
/* Close what cli_open() and cli_open_coll() opened. */
void cli_close(cli *c);

/* A collection of the database c->dbname, ready for document commands. */
typedef struct cli_coll {
    sprig_db *db; /* borrowed from the cli */
    const char *name;
    sprig_id_kind kind;
} cli_coll;

/* Open the storage and the database, and find `coll` in its schema. */
int cli_open_coll(cli *c, const char *coll, cli_coll *out);

/* A document id parsed from the command line. */
typedef struct cli_id {
    uint8_t u64[8];
    sprig_bytes bytes;
} cli_id;

/* Parse `arg` as an id of collection `cc`: a decimal u64 for u64-id
 * collections, the string's bytes for natural ones.  `arg` must outlive
 * `out`.  Returns CLI_CONTINUE or the exit status. */
int cli_parse_id(const cli_coll *cc, const char *arg, cli_id *out);
/* Parse a decimal number no larger than `max`; false if it is not one. */
bool cli_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* ---- json.c: validating input, writing output -------------------------- */

/* Whether `text` is one JSON value; if not, describe why in `why`. */
bool cli_json_valid(sprig_bytes text, char *why, size_t why_len);

/* JSON text being written: append pieces, then print it.  Initialise with
 * {0}.  An allocation failure is remembered and reported by jw_print(). */
typedef struct jw {
    sprig_buf buf;
    bool failed;
} jw;

void jw_raw(jw *w, const char *s);
void jw_u64(jw *w, uint64_t v);
/* A JSON string of `s`; bytes that are not UTF-8 become U+FFFD. */
void jw_str(jw *w, sprig_bytes s);
void jw_cstr(jw *w, const char *s);
/* `"name":` */
void jw_key(jw *w, const char *name);
/* Valid JSON `text`, with insignificant whitespace removed. */
void jw_json(jw *w, sprig_bytes text);
/* Document contents: as JSON when they are JSON, else as a string. */
void jw_contents(jw *w, sprig_bytes contents);
/* An id: a number in u64-id collections, else a string. */
void jw_id(jw *w, sprig_id_kind kind, sprig_bytes id);
/* `{"id":..,"revision":..` -- the caller closes the object. */
void jw_header_open(jw *w, sprig_id_kind kind, sprig_header h);
/* Print the text on stdout (indented on a terminal), free it, and return
 * the exit status. */
int jw_print(jw *w);
void jw_free(jw *w);

/* ---- the commands ------------------------------------------------------ */

int cli_cmd_schema(cli *c, int argc, char **argv);
int cli_cmd_db(cli *c, int argc, char **argv);
int cli_cmd_doc(cli *c, int argc, char **argv);
int cli_cmd_demo(cli *c, int argc, char **argv);
int cli_cmd_serve(cli *c, int argc, char **argv);
int cli_cmd_kv(cli *c, int argc, char **argv);
int cli_cmd_view(cli *c, int argc, char **argv);
int cli_cmd_admin(cli *c, int argc, char **argv);
/* Read a password from the terminal without echo (prompt on stderr) into
 * `out`; CLI_CONTINUE, or an exit status after an error message. */
int cli_prompt_password(const char *prompt, char *out, size_t cap);

#endif /* SPRIG_TOOLS_CLI_H */
