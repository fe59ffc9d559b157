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

#include <sprig/client.h>
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
    CLI_EBUSY = 5,     /* SPRIG_EBUSY: another process has the storage */
    CLI_EKEY = 6       /* SPRIG_EAUTH, SPRIG_EPERM: access denied (not
                          logged in, not granted, read-only), or the vault
                          key or password is wrong, missing, or its file
                          readable by others */
};

/* cli_parse() and friends return this when the command should go on. */
#define CLI_CONTINUE (-1)

/* Most positional arguments any command takes. */
#define CLI_MAX_POS 64

/* The state of one invocation. */
typedef struct cli {
    const char *prog;        /* how the tool was invoked (argv[0]) */
    const char *path;        /* --path */
    const char *dbname;      /* --db */
    const char *url;         /* --url: any placement sprig_open() takes */
    const char *ca_file;     /* --ca: wss, the certificate to trust */
    const char *schema_file; /* --schema: registered by cli_open() */
    /* the vault (issue 13): --vault-key FILE, --ask-passphrase (else
     * $SPRIG_PASSPHRASE), --encrypt and --compress for a new storage */
    const char *vault_key;
    bool ask_passphrase, encrypt, compress;
    char passphrase[256];
    bool read_only;           /* --read-only: a local storage, read-only */
    const char *format;       /* --format json|table|csv (format.c) */
    const char *user;         /* --user: log in (a server) as this user */
    const char *password_env; /* --password-env VAR: its password */
    const char *token_file;   /* --token-file FILE: log in with a token */
    bool no_follow;           /* --no-follow: a cluster's ENOTLEADER fails */
    bool linearizable;        /* --linearizable: linearizable reads */
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

/* Print "sprig: <problem>" and a line pointing to the command's --help
 * on stderr; returns CLI_EUSAGE.  `usage` (the command's help text) is
 * what cli_parse() reads argument names from. */
int cli_usage(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The command being run as typed so far ("sprig doc put"): cli_dispatch()
 * appends each name it dispatches to; the shell resets it per line. */
const char *cli_command_path(void);
void cli_reset_command_path(void);
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
 * `min` and `max` positional arguments.  After "--" arguments are
 * positional until there are `max` of them, then options again (kv set K
 * -- -5 --type i64); "-" and negative numbers ("-5") are positional.  A
 * missing argument is named from the synopsis of `usage` (its upper-case
 * words).  Returns CLI_CONTINUE, or the exit status. */
int cli_parse(int argc, char **argv, const cli_opt *opts, const char *usage,
              int min, int max, cli_args *out);
/* Run the command of `cmds` named by argv[0]. */
int cli_dispatch(cli *c, const cli_cmd *cmds, int argc, char **argv,
                 const char *usage);

/* The default --path; c->path == cli_default_path when none was given. */
extern const char cli_default_path[];
/* Sprig's default port, which ws:// and wss:// URLs without one get. */
#define CLI_DEFAULT_PORT 5646

/* Open the storage with sprig_open(): c->url if given, else the directory
 * c->path (as file:PATH).  Unless `create`, a missing directory is
 * SPRIG_ENOTFOUND rather than a new storage.  Returns CLI_CONTINUE or the
 * exit status (after printing the error). */
int cli_open(cli *c, bool create);
/* Where the storage is, for messages: the URL, else the path.  For
 * commands, "--url URL" or "--path DIR" as they would be typed. */
const char *cli_where(const cli *c);
const char *cli_where_opt(const cli *c);
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
/* Print the text on stdout as --format says (JSON indented on a terminal,
 * a table, CSV; format.c), through the pager when it is long on a
 * terminal; free it, and return the exit status. */
int jw_print(jw *w);
void jw_free(jw *w);

/* ---- format.c: output formats and the pager ---------------------------- */

/* How one-value output is shown (--format). */
typedef enum cli_format {
    CLI_FORMAT_JSON = 0,
    CLI_FORMAT_TABLE,
    CLI_FORMAT_CSV
} cli_format;

/* "json", "table", "csv"; false for anything else. */
bool cli_format_parse(const char *s, cli_format *out);
/* Where the --format option's value will be (read at print time, since
 * global options may follow the command). */
void cli_output_init(const char *const *name);
/* The shell's `format` command: the format when no --format is given
 * (-1: JSON again). */
void cli_output_force(int format);
/* The format to print in; CLI_EUSAGE (after the message) for a bad
 * --format, else CLI_CONTINUE. */
int cli_output_format(cli_format *out);
/* Append compact JSON `json` (what jw built) shown as table or CSV (not
 * JSON) to `out`.  Returns 0 or SPRIG_ENOMEM. */
int cli_render(sprig_bytes json, cli_format f, sprig_buf *out);
/* Write `text` to stdout: through the pager when stdout is a terminal and
 * the text has as many lines as it.  Returns CLI_OK or the exit status. */
int cli_emit(const char *text, size_t n);

/* ---- the commands ------------------------------------------------------ */

int cli_cmd_schema(cli *c, int argc, char **argv);
int cli_cmd_db(cli *c, int argc, char **argv);
int cli_cmd_doc(cli *c, int argc, char **argv);
int cli_cmd_demo(cli *c, int argc, char **argv);
int cli_cmd_serve(cli *c, int argc, char **argv);
int cli_cmd_kv(cli *c, int argc, char **argv);
int cli_cmd_vault(cli *c, int argc, char **argv);
int cli_cmd_view(cli *c, int argc, char **argv);
int cli_cmd_file(cli *c, int argc, char **argv); /* cmd_file.c */
int cli_cmd_cert(cli *c, int argc, char **argv);

/* shell.c: `sprig shell`, the interactive shell (libedit). */
int cli_cmd_shell(cli *c, int argc, char **argv);
/* main.c: run argv[0..argc) as a top-level command (the shell's lines),
 * and the top-level command table (for completion). */
int cli_run_command(cli *c, int argc, char **argv);
const cli_cmd *cli_top_commands(void);

/* cmd_clients.c: `clients` (a server's open connections). */
int cli_cmd_clients(cli *c, int argc, char **argv);
/* cmd_cluster.c: cluster status|add|remove|transfer-leader (issue 18) */
int cli_cmd_cluster(cli *c, int argc, char **argv);

/* cmd_watch.c: `pubsub subscribe|publish` and `log`. */
int cli_cmd_pubsub(cli *c, int argc, char **argv);
int cli_cmd_log(cli *c, int argc, char **argv);
/* `watch`: the changes feed (issue 15). */
int cli_cmd_watch(cli *c, int argc, char **argv);

/* cmd_io.c: `doc import` and `doc export` (rows of cmd_doc.c's table). */
int cli_doc_import(cli *c, int argc, char **argv);
int cli_doc_export(cli *c, int argc, char **argv);
int cli_cmd_check(cli *c, int argc, char **argv);
/* cmd_backup.c: backup, restore, export, import, compact */
int cli_cmd_backup(cli *c, int argc, char **argv);
int cli_cmd_restore(cli *c, int argc, char **argv);
int cli_cmd_export(cli *c, int argc, char **argv);
int cli_cmd_import(cli *c, int argc, char **argv);
int cli_cmd_compact(cli *c, int argc, char **argv);
int cli_cmd_admin(cli *c, int argc, char **argv);
/* cmd_api.c (issue 12): a server's APIs, and calling a custom one. */
int cli_cmd_apis(cli *c, int argc, char **argv);
int cli_cmd_call(cli *c, int argc, char **argv);
/* Read a password from the terminal without echo (prompt on stderr) into
 * `out`; CLI_CONTINUE, or an exit status after an error message. */
int cli_prompt_password(const char *prompt, char *out, size_t cap);

#endif /* SPRIG_TOOLS_CLI_H */
