/*
 * cmd_file.c -- `sprig file put|get|cat|ls|stat|rm|mv|gc`: the file store
 * (include/sprig/files.h) of the database chosen with --db.  A database
 * that does not exist yet is created with the schema "files" (the store's
 * collections, registered here); an existing one must have them.  put
 * and get stream through the store's bounded buffer and show a progress
 * bar on a terminal (progress.h; --quiet turns it off).  Part of
 * tools/sprig/; see cli.h.
 */
#include "cli.h"
#include "progress.h"

#include <sprig/files.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char file_usage[] =
    "usage: sprig [--path DIR | --url URL] [--db NAME] file COMMAND ...\n"
    "\n"
    "  file put LOCAL PATH [--meta JSON] [--exclusive] [--quiet]\n"
    "  file get PATH [LOCAL] [--quiet]\n"
    "  file cat PATH [--offset N] [--length N]\n"
    "  file ls [DIR] [--after NAME] [--limit N]\n"
    "  file stat PATH\n"
    "  file rm PATH\n"
    "  file mv FROM TO [--exclusive]\n"
    "  file gc [--min-age MS]\n"
    "\n"
    "Files live in the database --db (created with the schema \"files\" if\n"
    "it does not exist), under absolute paths (\"/docs/a.pdf\").  LOCAL\n"
    "'-' is stdin / stdout.  Each command takes --help.\n";

static const char put_usage[] =
    "usage: sprig file put LOCAL PATH [--meta JSON] [--exclusive] "
    "[--quiet]\n"
    "\n"
    "Store the local file LOCAL ('-': stdin) at PATH, replacing a file\n"
    "there (--exclusive: exit 4 instead), atomically, with the user\n"
    "metadata JSON.  Prints {\"path\":..,\"length\":..}.\n";
static const char get_usage[] =
    "usage: sprig file get PATH [LOCAL] [--quiet]\n"
    "\n"
    "Write the file at PATH to LOCAL (default: its name in the current\n"
    "directory; '-': stdout).  Exit 3 if there is no such file.\n";
static const char cat_usage[] =
    "usage: sprig file cat PATH [--offset N] [--length N]\n"
    "\n"
    "Write the file's bytes (from N, at most N) to stdout.\n";
static const char ls_usage[] =
    "usage: sprig file ls [DIR] [--after NAME] [--limit N]\n"
    "\n"
    "Print directory DIR (default /) as a JSON array: files\n"
    "{\"name\":..,\"length\":..,\"modified_ms\":..} by name, then\n"
    "subdirectories {\"name\":\"sub/\",\"dir\":true}.  At most N entries\n"
    "(default 1000); for the next page pass the last name as --after.\n";
static const char stat_usage[] =
    "usage: sprig file stat PATH\n"
    "\n"
    "Print {\"path\",\"length\",\"created_ms\",\"modified_ms\",\n"
    "\"chunk_size\",\"revision\",\"metadata\"}.\n";
static const char rm_usage[] = "usage: sprig file rm PATH\n"
                               "\n"
                               "Delete the file at PATH.\n";
static const char gc_usage[] =
    "usage: sprig file gc [--min-age MS]\n"
    "\n"
    "Collect what failed writers left: chunks of replaced or deleted files,\n"
    "and large writes not heard of for MS milliseconds (default 600000).\n"
    "Prints {\"collected_chunks\":N}.\n";
static const char mv_usage[] =
    "usage: sprig file mv FROM TO [--exclusive]\n"
    "\n"
    "Move a file, replacing one at TO (--exclusive: exit 4 instead).\n";

/* ---- opening ----------------------------------------------------------- */

/* Open the database (creating it with the schema "files" if needed) and
 * its file store. */
static int
open_files(cli *c, sprig_files **out)
{
    int rc = cli_open(c, true);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    int src = c->db ? 0 : sprig_storage_open_database(c->st, c->dbname, &c->db);
    if (src == SPRIG_ENOTFOUND) {
        sprig_schema_def *s;
        src = sprig_files_schema_add(NULL, "files", NULL, &s);
        src = src ? src : sprig_storage_register_schema(c->st, s);
        src = src ? src
                  : sprig_storage_create_database(c->st, c->dbname, "files",
                                                  true);
        src = src ? src : sprig_storage_open_database(c->st, c->dbname, &c->db);
        sprig_files_schema_free(s);
    }
    src = src ? src : sprig_files_open(c->db, NULL, out);
    if (src == SPRIG_ESCHEMA) {
        return cli_err(src,
                       "database '%s' has no file store (its schema "
                       "lacks files.files; use --db with a new name)",
                       c->dbname);
    }
    return src ? cli_fail(src) : CLI_CONTINUE;
}

/* ---- put and get --------------------------------------------------------- */

typedef struct xfer {
    int fd;
    cli_progress prog;
    int err; /* errno of a failed read or write */
} xfer;

static ssize_t
xfer_read(void *udata, void *buf, size_t cap)
{
    xfer *x = udata;
    ssize_t n;
    do {
        n = read(x->fd, buf, cap);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        x->err = errno;
        return SPRIG_EIO;
    }
    cli_progress_add(&x->prog, 0, (uint64_t)n);
    return n;
}

static int
xfer_write(void *udata, const void *data, size_t len)
{
    xfer *x = udata;
    for (const char *p = data; len;) {
        ssize_t n = write(x->fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            x->err = errno;
            return SPRIG_EIO;
        }
        p += n, len -= (size_t)n;
        cli_progress_add(&x->prog, 0, (uint64_t)n);
    }
    return 0;
}

static void
xfer_start(xfer *x, const char *label, uint64_t total, bool quiet)
{
    cli_progress_opts o;
    cli_progress_opts_init(&o);
    o.label = label;
    o.unit = "file";
    o.total_items = 1;
    o.total_bytes = total;
    o.quiet = quiet;
    cli_progress_start(&x->prog, &o);
}

static int
xfer_fail(xfer *x, int rc, const char *what)
{
    cli_progress_clear(&x->prog);
    if (x->err) {
        return cli_err(SPRIG_EIO, "%s: %s", what, strerror(x->err));
    }
    return cli_fail(rc);
}

static int
print_put(const char *path, uint64_t length)
{
    jw w = {0};
    jw_raw(&w, "{");
    jw_key(&w, "path");
    jw_cstr(&w, path);
    jw_raw(&w, ",");
    jw_key(&w, "length");
    jw_u64(&w, length);
    jw_raw(&w, "}");
    return jw_print(&w);
}

static int
file_put(cli *c, int argc, char **argv)
{
    const char *meta = NULL;
    bool excl = false, quiet = false;
    cli_opt opts[] = {{"--meta", &meta, NULL},
                      {"--exclusive", NULL, &excl},
                      {"--quiet", NULL, &quiet},
                      {0}};
    cli_args a;
    sprig_files *fs = NULL;
    char why[200];
    int rc = cli_parse(argc, argv, opts, put_usage, 2, 2, &a);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    if (meta && !cli_json_valid(sprig_str(meta), why, sizeof why)) {
        return cli_usage(put_usage, "--meta is not JSON: %s", why);
    }
    bool in = strcmp(a.pos[0], "-") == 0;
    xfer x = {in ? 0 : open(a.pos[0], O_RDONLY | O_CLOEXEC), {{0}}, 0};
    if (x.fd < 0) {
        return cli_err(SPRIG_ENOTFOUND, "%s: %s", a.pos[0], strerror(errno));
    }
    rc = open_files(c, &fs);
    if (rc == CLI_CONTINUE) {
        struct stat sb;
        bool reg = fstat(x.fd, &sb) == 0 && S_ISREG(sb.st_mode);
        sprig_bytes m = meta ? sprig_str(meta) : (sprig_bytes){0};
        xfer_start(&x, "put", reg ? (uint64_t)sb.st_size : 0, quiet);
        int src = sprig_files_put_stream(fs, a.pos[1], xfer_read, &x, &m,
                                         excl ? SPRIG_FILES_EXCLUSIVE : 0);
        cli_progress_add(&x.prog, src ? 0 : 1, 0);
        cli_progress_finish(&x.prog);
        rc = src ? xfer_fail(&x, src, a.pos[0])
                 : print_put(a.pos[1], x.prog.bytes);
    }
    if (x.fd > 0) {
        close(x.fd);
    }
    sprig_files_close(fs);
    return rc;
}

/* The local name of a get: LOCAL, or the last component of PATH. */
static const char *
get_target(const cli_args *a)
{
    if (a->n > 1) {
        return a->pos[1];
    }
    const char *slash = strrchr(a->pos[0], '/');
    return slash && slash[1] ? slash + 1 : a->pos[0];
}

static int
file_get_to(cli *c, const char *path, const char *local, bool quiet)
{
    sprig_files *fs = NULL;
    sprig_file_stat st;
    int rc = open_files(c, &fs);
    int src = rc == CLI_CONTINUE ? sprig_files_stat(fs, path, &st, NULL) : 0;
    if (rc != CLI_CONTINUE || src) {
        sprig_files_close(fs);
        return src ? cli_fail(src) : rc;
    }
    bool out = strcmp(local, "-") == 0;
    xfer x = {0};
    x.fd =
        out ? 1 : open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (x.fd < 0) {
        sprig_files_close(fs);
        return cli_err(SPRIG_EIO, "%s: %s", local, strerror(errno));
    }
    xfer_start(&x, "get", st.length, quiet);
    src =
        sprig_files_read_stream(fs, path, 0, UINT64_MAX, xfer_write, &x, NULL);
    cli_progress_finish(&x.prog);
    rc = src ? xfer_fail(&x, src, local) : CLI_OK;
    if (!out && close(x.fd) != 0 && rc == CLI_OK) {
        rc = cli_err(SPRIG_EIO, "%s: %s", local, strerror(errno));
    }
    sprig_files_close(fs);
    return rc;
}

static int
file_get(cli *c, int argc, char **argv)
{
    bool quiet = false;
    cli_opt opts[] = {{"--quiet", NULL, &quiet}, {0}};
    cli_args a;
    int rc = cli_parse(argc, argv, opts, get_usage, 1, 2, &a);
    return rc == CLI_CONTINUE ? file_get_to(c, a.pos[0], get_target(&a), quiet)
                              : rc;
}

static int
file_cat(cli *c, int argc, char **argv)
{
    const char *off = NULL, *len = NULL;
    cli_opt opts[] = {{"--offset", &off, NULL}, {"--length", &len, NULL}, {0}};
    cli_args a;
    uint64_t o = 0, n = UINT64_MAX;
    sprig_files *fs = NULL;
    int rc = cli_parse(argc, argv, opts, cat_usage, 1, 1, &a);
    if (rc == CLI_CONTINUE && ((off && !cli_parse_uint(off, UINT64_MAX, &o)) ||
                               (len && !cli_parse_uint(len, UINT64_MAX, &n)))) {
        return cli_usage(cat_usage, "--offset and --length take numbers");
    }
    rc = rc == CLI_CONTINUE ? open_files(c, &fs) : rc;
    if (rc == CLI_CONTINUE) {
        xfer x = {1, {{0}}, 0};
        xfer_start(&x, "cat", 0, true);
        int src =
            sprig_files_read_stream(fs, a.pos[0], o, n, xfer_write, &x, NULL);
        rc = src ? xfer_fail(&x, src, "stdout") : CLI_OK;
    }
    sprig_files_close(fs);
    return rc;
}

/* ---- ls, stat, rm, mv ---------------------------------------------------- */

static void
jw_entry(jw *w, const sprig_file_list *l, size_t i)
{
    sprig_file_stat st = sprig_file_list_stat(l, i);
    jw_raw(w, i ? ",{" : "{");
    jw_key(w, "name");
    jw_cstr(w, sprig_file_list_name(l, i));
    if (sprig_file_list_is_dir(l, i)) {
        jw_raw(w, ",\"dir\":true}");
        return;
    }
    jw_raw(w, ",");
    jw_key(w, "length");
    jw_u64(w, st.length);
    jw_raw(w, ",");
    jw_key(w, "modified_ms");
    jw_u64(w, st.modified_ms);
    jw_raw(w, "}");
}

static int
file_ls(cli *c, int argc, char **argv)
{
    const char *after = NULL, *limit = NULL;
    cli_opt opts[] = {
        {"--after", &after, NULL}, {"--limit", &limit, NULL}, {0}};
    cli_args a;
    uint64_t lim = 0;
    sprig_files *fs = NULL;
    int rc = cli_parse(argc, argv, opts, ls_usage, 0, 1, &a);
    if (rc == CLI_CONTINUE && limit &&
        !cli_parse_uint(limit, UINT32_MAX, &lim)) {
        return cli_usage(ls_usage, "--limit takes a number");
    }
    rc = rc == CLI_CONTINUE ? open_files(c, &fs) : rc;
    if (rc == CLI_CONTINUE) {
        sprig_file_list *l;
        int src = sprig_files_list(fs, a.n ? a.pos[0] : "/", after,
                                   (uint32_t)lim, &l);
        if (src) {
            rc = cli_fail(src);
        } else {
            jw w = {0};
            jw_raw(&w, "[");
            for (size_t i = 0; i < sprig_file_list_count(l); i++) {
                jw_entry(&w, l, i);
            }
            jw_raw(&w, "]");
            sprig_file_list_free(l);
            rc = jw_print(&w);
        }
    }
    sprig_files_close(fs);
    return rc;
}

static void
jw_field(jw *w, const char *name, uint64_t v)
{
    jw_raw(w, ",");
    jw_key(w, name);
    jw_u64(w, v);
}

static int
file_stat(cli *c, int argc, char **argv)
{
    cli_opt opts[] = {{0}};
    cli_args a;
    sprig_files *fs = NULL;
    int rc = cli_parse(argc, argv, opts, stat_usage, 1, 1, &a);
    rc = rc == CLI_CONTINUE ? open_files(c, &fs) : rc;
    if (rc == CLI_CONTINUE) {
        sprig_file_stat st;
        sprig_buf meta = {0};
        int src = sprig_files_stat(fs, a.pos[0], &st, &meta);
        if (src) {
            rc = cli_fail(src);
        } else {
            jw w = {0};
            jw_raw(&w, "{");
            jw_key(&w, "path");
            jw_cstr(&w, a.pos[0]);
            jw_field(&w, "length", st.length);
            jw_field(&w, "created_ms", st.created_ms);
            jw_field(&w, "modified_ms", st.modified_ms);
            jw_field(&w, "chunk_size", st.chunk_size);
            jw_field(&w, "revision", st.revision);
            jw_raw(&w, ",");
            jw_key(&w, "metadata");
            if (meta.len) {
                jw_contents(&w, sprig_buf_bytes(&meta));
            } else {
                jw_raw(&w, "null");
            }
            jw_raw(&w, "}");
            rc = jw_print(&w);
        }
        sprig_buf_clear(&meta);
    }
    sprig_files_close(fs);
    return rc;
}

static int
file_rm(cli *c, int argc, char **argv)
{
    cli_opt opts[] = {{0}};
    cli_args a;
    sprig_files *fs = NULL;
    int rc = cli_parse(argc, argv, opts, rm_usage, 1, 1, &a);
    rc = rc == CLI_CONTINUE ? open_files(c, &fs) : rc;
    if (rc == CLI_CONTINUE) {
        int src = sprig_files_delete(fs, a.pos[0]);
        rc = src ? cli_fail(src) : CLI_OK;
    }
    sprig_files_close(fs);
    return rc;
}

static int
file_mv(cli *c, int argc, char **argv)
{
    bool excl = false;
    cli_opt opts[] = {{"--exclusive", NULL, &excl}, {0}};
    cli_args a;
    sprig_files *fs = NULL;
    int rc = cli_parse(argc, argv, opts, mv_usage, 2, 2, &a);
    rc = rc == CLI_CONTINUE ? open_files(c, &fs) : rc;
    if (rc == CLI_CONTINUE) {
        int src = sprig_files_rename(fs, a.pos[0], a.pos[1],
                                     excl ? SPRIG_FILES_EXCLUSIVE : 0);
        rc = src ? cli_fail(src) : CLI_OK;
    }
    sprig_files_close(fs);
    return rc;
}

static int
file_gc(cli *c, int argc, char **argv)
{
    const char *age = NULL;
    cli_opt opts[] = {{"--min-age", &age, NULL}, {0}};
    cli_args a;
    uint64_t ms = 600000, n = 0;
    sprig_files *fs = NULL;
    int rc = cli_parse(argc, argv, opts, gc_usage, 0, 0, &a);
    if (rc == CLI_CONTINUE && age && !cli_parse_uint(age, UINT64_MAX, &ms)) {
        return cli_usage(gc_usage, "--min-age takes a number");
    }
    rc = rc == CLI_CONTINUE ? open_files(c, &fs) : rc;
    if (rc == CLI_CONTINUE) {
        int src = sprig_files_gc(fs, ms, &n);
        jw w = {0};
        jw_raw(&w, "{\"collected_chunks\":");
        jw_u64(&w, n);
        jw_raw(&w, "}");
        rc = src ? (jw_free(&w), cli_fail(src)) : jw_print(&w);
    }
    sprig_files_close(fs);
    return rc;
}

static const cli_cmd file_cmds[] = {
    {"put", file_put}, {"get", file_get},   {"cat", file_cat},
    {"ls", file_ls},   {"stat", file_stat}, {"rm", file_rm},
    {"mv", file_mv},   {"gc", file_gc},     {NULL, NULL},
};

int
cli_cmd_file(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, file_cmds, argc - 1, argv + 1, file_usage);
}
