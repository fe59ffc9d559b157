/*
 * fsm.c -- the Raft state machine of a node (cluster.h): apply() runs a
 * committed entry's command through the local storage (exactly once per
 * environment, by the applied indexes of src/local/repl.h); snapshot() and
 * restore() move a compacted copy of the whole storage.
 */
#include "cluster_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAP_MAGIC "SPRIGSN1"

static sprig__cnode *
node_of(struct raft_fsm *fsm)
{
    return fsm->data;
}

/* ---- apply
 * ------------------------------------------------------------------- */

typedef struct entry {
    uint64_t origin, seq;
    uint8_t flags; /* SPRIG__ENTRY_RID, _WANT (version 3) */
    uint8_t rid[16];
    char db[SPRIG_NAME_MAX + 1];
    sprig_bytes cmd;
} entry;

/* Version 3's request-id part at *off (node.c encode_rid_part). */
static int
parse_rid_part(const uint8_t *p, size_t len, size_t *off, entry *e)
{
    e->flags = *off < len ? p[*off] : 0xff;
    size_t need = 1 + ((e->flags & SPRIG__ENTRY_RID) ? 16 : 0);
    if ((e->flags & ~(SPRIG__ENTRY_RID | SPRIG__ENTRY_WANT)) ||
        len - *off < need) {
        return sprig__err(SPRIG_ECORRUPT, "a Raft entry's request-id part "
                                          "is malformed");
    }
    if (e->flags & SPRIG__ENTRY_RID) {
        memcpy(e->rid, p + *off + 1, 16);
    }
    *off += need;
    return SPRIG_OK;
}

static int
parse_entry(const struct raft_buffer *buf, entry *e)
{
    e->flags = 0;
    const uint8_t *p = buf->base;
    size_t len = buf->len;
    if (len < SPRIG__ENTRY_HDR + 1 || p[0] != SPRIG__ENTRY_MAGIC || p[1] < 1 ||
        p[1] > SPRIG__ENTRY_VERSION) {
        return sprig__err(SPRIG_ECORRUPT,
                          "a Raft entry of %zu bytes is not "
                          "a Sprig command",
                          len);
    }
    if (p[1] >= 2) { /* padded to 8 (node.c) */
        size_t np = p[len - 1];
        if (len % 8 != 0 || np < 1 || np > 8 ||
            len < SPRIG__ENTRY_HDR + 1 + np) {
            return sprig__err(SPRIG_ECORRUPT,
                              "a Raft entry of %zu bytes has "
                              "bad padding",
                              len);
        }
        len -= np;
    }
    e->origin = sprig__get_u64be(p + 2);
    e->seq = sprig__get_u64be(p + 10);
    size_t off = SPRIG__ENTRY_HDR;
    int rc = p[1] >= 3 ? parse_rid_part(p, len, &off, e) : SPRIG_OK;
    size_t dl = off < len ? p[off] : SIZE_MAX;
    if (rc || dl > SPRIG_NAME_MAX || off + 1 + dl > len) {
        return rc ? rc
                  : sprig__err(SPRIG_ECORRUPT, "a Raft entry's database name "
                                               "overruns it");
    }
    memcpy(e->db, p + off + 1, dl);
    e->db[dl] = 0;
    e->cmd.data = p + off + 1 + dl;
    e->cmd.len = len - off - 1 - dl;
    return SPRIG_OK;
}

/* Was the entry at `index` for `db` applied before (a restart)? */
static int
already_applied(sprig__cnode *n, const entry *e, uint64_t index, bool *yes)
{
    uint64_t a = 0;
    *yes = false;
    if (index > n->recovered_max) {
        return SPRIG_OK;
    }
    int rc = sprig__storage_raft_applied(n->st, e->db, &a);
    *yes = rc == 0 && a >= index;
    return rc;
}

/* Outcomes that are the command's own (the same on every node) rather
 * than this node failing to apply it. */
static bool
deterministic(int rc)
{
    return rc != SPRIG_EIO && rc != SPRIG_EFULL && rc != SPRIG_ENOMEM &&
           rc != SPRIG_ECORRUPT;
}

/* Apply `c` at `index`: the storage's writers, no sync needed (the Raft
 * log is the durable point). */
static void
prepare_cmd(sprig__cmd *c, uint64_t index)
{
    c->raft_index = index;
    c->lazy = true;
    c->replicated = true;
}

static int
apply_cmd(sprig__cnode *n, const char *db, sprig__cmd *c, uint64_t index)
{
    prepare_cmd(c, index);
    return sprig__storage_apply(n->st, db, c);
}

/* A decoded command takes the request id and the wanting of the previous
 * value from its entry (the origin's command has them already). */
static void
entry_rid(const entry *e, sprig__cmd *c)
{
    c->has_rid = (e->flags & SPRIG__ENTRY_RID) != 0;
    c->want_value = (e->flags & SPRIG__ENTRY_WANT) != 0;
    if (c->has_rid) {
        memcpy(c->rid, e->rid, 16);
    }
}

/* A PUBLISH entry from before the node started: its message is old news
 * (applied live before, or committed while this node was down), so it is
 * not delivered again; it changes no stored state either way. */
static bool
stale_publish(sprig__cnode *n, const entry *e, uint64_t index)
{
    bool stale = index <= n->publish_floor && e->cmd.len >= 2 &&
                 ((const uint8_t *)e->cmd.data)[1] == SPRIG__CMD_PUBLISH;
    n->stats.stale_publishes += stale;
    return stale;
}

/* Count an entry's outcome; RAFT_IOERR (and the node wedged) when it is
 * this node failing rather than the command's own refusal. */
static int
account(sprig__cnode *n, int rc, uint64_t index)
{
    n->stats.applied++;
    n->stats.failed += rc != 0;
    if (rc && !deterministic(rc)) {
        fprintf(stderr,
                "sprig: node %llu cannot apply entry %llu: %s; it "
                "applies nothing more until restarted\n",
                (unsigned long long)n->id, (unsigned long long)index,
                sprig_errmsg());
        n->wedged = true;
        return RAFT_IOERR;
    }
    return 0;
}

/* Apply entry `e` at `index` now, alone (the path of admin commands and
 * of a restart's replay). */
static int
apply_now(sprig__cnode *n, const entry *e, uint64_t index, void **result)
{
    sprig__prop *p =
        e->origin == n->id ? sprig__prop_find(n, e->seq, false) : NULL;
    int rc;
    if (p) {
        rc = apply_cmd(n, e->db, p->cmd, index);
        p->rc = rc;
        p->applied = true;
        if (rc) {
            sprig__err_save(&p->err);
        }
        *result = p;
    } else {
        sprig__cmd c;
        rc = sprig__cmd_decode(e->cmd, &c);
        entry_rid(e, &c);
        rc = rc ? rc : apply_cmd(n, e->db, &c, index);
        sprig__cmd_clear(&c);
    }
    int verdict = account(n, rc, index);
    if (p && p->raft_done) { /* its group's callback ran: answer it now */
        *result = NULL;
        sprig__prop_answer(p);
    }
    return verdict;
}

/* ---- the apply batch
 * ---------------------------------------------------------
 *
 * libraft applies the committed entries of a round one by one.  A
 * proposal is answered once its own entry is applied (node.c groups
 * several proposals in one raft_apply, whose callback libraft calls after
 * the group's first entry).  One LMDB
 * transaction per entry made the driver thread the bottleneck of a loaded
 * node, so consecutive command entries of one database are gathered and
 * committed in one writer batch (one transaction; a refused command
 * still changes nothing: writer.c) when the round ends: at the last
 * committed entry, or before an entry that is not a command (a barrier --
 * a read must see every entry before it -- or a configuration change), a
 * snapshot, a restore, or an entry of another database or an admin kind.
 * Each command still records its own index (raft.applied) in that
 * transaction, so a restart applies each entry exactly once.  A proposal
 * in the batch is answered by the flush, after its commit, never before. */

/* Is the entry at `index` in r's log, and a command? */
static bool
log_is_command(const struct raft *r, raft_index index)
{
    const struct raft_log *l = &r->log;
    size_t n =
        l->back >= l->front ? l->back - l->front : l->size - l->front + l->back;
    if (n == 0 || index <= l->offset || index > l->offset + n) {
        return false;
    }
    size_t pos = (l->front + (size_t)(index - l->offset - 1)) % l->size;
    return l->entries[pos].type == RAFT_COMMAND;
}

/* Does the round end with the entry at `index`? */
static bool
round_ends(const sprig__cnode *n, uint64_t index)
{
    const struct raft *r = n->raft;
    return index >= r->commit_index || !log_is_command(r, index + 1);
}

static bool
batchable(const sprig__cmd *c)
{
    return c->kind == SPRIG__CMD_TXN || c->kind == SPRIG__CMD_KV ||
           c->kind == SPRIG__CMD_SWEEP;
}

static int
batch_grow(sprig__cnode *n)
{
    if (n->batch_n < n->batch_cap) {
        return SPRIG_OK;
    }
    size_t cap = n->batch_cap ? 2 * n->batch_cap : 64;
    sprig__cmd **c = sprig__realloc(n->batch_cmds, cap * sizeof *c);
    n->batch_cmds = c ? c : n->batch_cmds;
    sprig__prop **p =
        c ? sprig__realloc(n->batch_props, cap * sizeof *p) : NULL;
    n->batch_props = p ? p : n->batch_props;
    int *r = p ? sprig__realloc(n->batch_rcs, cap * sizeof *r) : NULL;
    n->batch_rcs = r ? r : n->batch_rcs;
    sprig__errsave *e =
        r ? sprig__realloc(n->batch_errs, cap * sizeof *e) : NULL;
    n->batch_errs = e ? e : n->batch_errs;
    if (!e) {
        return sprig__err(SPRIG_ENOMEM, "out of memory batching applies");
    }
    n->batch_cap = cap;
    return SPRIG_OK;
}

/* The outcome of batch entry i: answer its proposal, or free its decoded
 * command.  Returns account()'s verdict. */
static int
batch_settle(sprig__cnode *n, size_t i, int rc, const sprig__errsave *err)
{
    sprig__prop *p = n->batch_props[i];
    sprig__cmd *c = n->batch_cmds[i];
    uint64_t index = c->raft_index;
    if (rc) {
        sprig__err_load(rc, err); /* for account()'s message */
    }
    int verdict = account(n, rc, index);
    if (p) {
        p->rc = rc;
        if (rc) {
            p->err = *err;
        }
        p->applied = true;
        p->deferred = false;
        if (p->raft_done) {
            sprig__prop_answer(p);
        } /* else its group's callback answers it */
    } else {
        sprig__cmd_clear(c);
        sprig__free(c);
    }
    return verdict;
}

int
sprig__fsm_flush(sprig__cnode *n)
{
    size_t k = n->batch_n;
    if (k == 0) {
        return 0;
    }
    int rc = sprig__storage_apply_many(n->st, n->batch_db, n->batch_cmds, k,
                                       n->batch_rcs, n->batch_errs);
    n->stats.batches++;
    n->stats.batched += k;
    n->stats.batch_max = k > n->stats.batch_max ? k : n->stats.batch_max;
    sprig__errsave whole;
    if (rc) {
        sprig__err_save(&whole);
    }
    int out = 0;
    for (size_t i = 0; i < k; i++) {
        int r = batch_settle(n, i, rc ? rc : n->batch_rcs[i],
                             rc ? &whole : &n->batch_errs[i]);
        out = out ? out : r;
    }
    n->batch_n = 0;
    return out;
}

void
sprig__fsm_fini(sprig__cnode *n)
{
    sprig__free(n->batch_cmds);
    sprig__free(n->batch_props);
    sprig__free(n->batch_rcs);
    sprig__free(n->batch_errs);
    n->batch_cmds = NULL;
    n->batch_props = NULL;
    n->batch_rcs = NULL;
    n->batch_errs = NULL;
    n->batch_n = n->batch_cap = 0;
}

/* Put entry `e` (a batchable command `c`, of proposal `p` or decoded) into
 * the batch, flushing first when it targets another database. */
static int
batch_add(sprig__cnode *n, const entry *e, sprig__cmd *c, sprig__prop *p)
{
    int rc = 0;
    if (n->batch_n && strcmp(n->batch_db, e->db) != 0) {
        rc = sprig__fsm_flush(n);
    }
    if (rc == 0 && batch_grow(n) != 0) {
        rc = RAFT_NOMEM;
    }
    if (rc) {
        return rc;
    }
    if (n->batch_n == 0) {
        memcpy(n->batch_db, e->db, strlen(e->db) + 1);
    }
    n->batch_cmds[n->batch_n] = c;
    n->batch_props[n->batch_n] = p;
    n->batch_n++;
    if (p) {
        p->deferred = true;
    }
    return 0;
}

/* Decode a follower's entry into a command on the heap (owned by the
 * batch). */
static int
decode_owned(const entry *e, sprig__cmd **out)
{
    sprig__cmd *c = sprig__calloc(1, sizeof *c);
    if (!c) {
        return sprig__err(SPRIG_ENOMEM, "out of memory decoding an entry");
    }
    int rc = sprig__cmd_decode(e->cmd, c);
    if (rc) {
        sprig__cmd_clear(c);
        sprig__free(c);
        return rc;
    }
    entry_rid(e, c);
    *out = c;
    return SPRIG_OK;
}

/* Apply entry `e` at `index` through the batch, or alone when it is not
 * a batchable command. */
static int
apply_batched(sprig__cnode *n, const entry *e, uint64_t index, void **result)
{
    sprig__prop *p =
        e->origin == n->id ? sprig__prop_find(n, e->seq, false) : NULL;
    sprig__cmd *c = p ? p->cmd : NULL;
    int rc = c ? 0 : decode_owned(e, &c);
    if (rc) {
        sprig__errsave why;
        sprig__err_save(&why);
        int frc = sprig__fsm_flush(n);
        return frc ? frc : account(n, sprig__err_load(rc, &why), index);
    }
    if (!batchable(c)) {
        if (!p) {
            sprig__cmd_clear(c);
            sprig__free(c);
        }
        rc = sprig__fsm_flush(n);
        return rc ? rc : apply_now(n, e, index, result);
    }
    prepare_cmd(c, index);
    rc = batch_add(n, e, c, p);
    if (rc) {
        if (!p) {
            sprig__cmd_clear(c);
            sprig__free(c);
        }
        return rc;
    }
    *result = p;
    return round_ends(n, index) ? sprig__fsm_flush(n) : 0;
}

static int
fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    sprig__cnode *n = node_of(fsm);
    uint64_t index = raft_last_applied(n->raft) + 1;
    entry e;
    bool skip = false;
    *result = NULL;
    if (n->wedged) {
        return RAFT_IOERR;
    }
    int rc = parse_entry(buf, &e);
    if (rc == 0 && stale_publish(n, &e, index)) {
        return sprig__fsm_flush(n);
    }
    if (rc == 0 && index > n->recovered_max) {
        return apply_batched(n, &e, index, result);
    }
    int frc = sprig__fsm_flush(n);
    if (frc) {
        return frc;
    }
    rc = rc ? rc : already_applied(n, &e, index, &skip);
    if (rc || skip) {
        n->stats.skipped += skip;
        return rc ? RAFT_CORRUPT : 0;
    }
    return apply_now(n, &e, index, result);
}

/* ---- packing a directory tree into one buffer
 * -------------------------------- */

static int
io_err(const char *what, const char *path)
{
    return sprig__err(SPRIG_EIO, "%s '%s': %s", what, path, strerror(errno));
}

/* The files of a tree: relative paths and sizes. */
typedef struct flist {
    char **rel;
    uint64_t *size;
    size_t n, cap;
} flist;

static int
flist_add(flist *l, const char *rel, uint64_t size)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **r = sprig__realloc(l->rel, cap * sizeof *r);
        l->rel = r ? r : l->rel;
        uint64_t *s = r ? sprig__realloc(l->size, cap * sizeof *s) : NULL;
        l->size = s ? s : l->size;
        if (!s) {
            return sprig__err(SPRIG_ENOMEM, "out of memory listing files");
        }
        l->cap = cap;
    }
    l->rel[l->n] = sprig__strdup(rel);
    l->size[l->n] = size;
    return l->rel[l->n++] ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
}

static void
flist_free(flist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        sprig__free(l->rel[i]);
    }
    sprig__free(l->rel);
    sprig__free(l->size);
}

/* Every regular file below root/rel (rel "" at the top). */
static int
list_tree(flist *l, const char *root, const char *rel)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d) {
        return io_err("cannot list", dir);
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "lock.mdb") == 0) {
            continue;
        }
        char sub[4096], full[8192];
        struct stat sb;
        snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
        snprintf(full, sizeof full, "%s/%s", root, sub);
        if (stat(full, &sb) != 0) {
            rc = io_err("cannot stat", full);
        } else if (S_ISDIR(sb.st_mode)) {
            rc = list_tree(l, root, sub);
        } else {
            rc = flist_add(l, sub, (uint64_t)sb.st_size);
        }
    }
    closedir(d);
    return rc;
}

static int
read_into(const char *path, uint8_t *p, uint64_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return io_err("cannot open", path);
    }
    uint64_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, p + got, size - got);
        if (r <= 0) {
            int rc = r < 0 ? io_err("cannot read", path)
                           : sprig__err(SPRIG_EIO, "'%s' shrank", path);
            close(fd);
            return rc;
        }
        got += (uint64_t)r;
    }
    close(fd);
    return SPRIG_OK;
}

/* Pack the files of `l` under `root` into one raft_malloc'd buffer. */
static int
pack(const flist *l, const char *root, uint64_t index, struct raft_buffer *out)
{
    size_t total = 16;
    for (size_t i = 0; i < l->n; i++) {
        total += 4 + strlen(l->rel[i]) + 8 + l->size[i];
    }
    uint8_t *b = raft_malloc(total), *p = b;
    if (!b) {
        return sprig__err(SPRIG_ENOMEM,
                          "out of memory for a %zu-byte "
                          "snapshot",
                          total);
    }
    memcpy(p, SNAP_MAGIC, 8);
    sprig__put_u64be(p + 8, index);
    p += 16;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        size_t rl = strlen(l->rel[i]);
        char path[8192];
        sprig__put_u32be(p, (uint32_t)rl);
        memcpy(p + 4, l->rel[i], rl);
        sprig__put_u64be(p + 4 + rl, l->size[i]);
        p += 4 + rl + 8;
        snprintf(path, sizeof path, "%s/%s", root, l->rel[i]);
        rc = read_into(path, p, l->size[i]);
        p += l->size[i];
    }
    if (rc) {
        raft_free(b);
        return rc;
    }
    out->base = b;
    out->len = total;
    return SPRIG_OK;
}

/* "<path>.<what>" beside the storage. */
static void
side_dir(const sprig__cnode *n, const char *what, char *out, size_t len)
{
    snprintf(out, len, "%s.%s", n->path, what);
}

/* ---- snapshot
 * ---------------------------------------------------------------- */

static int
take_snapshot(sprig__cnode *n, struct raft_buffer *out)
{
    char dir[4096];
    flist l = {0};
    uint64_t index = raft_last_applied(n->raft);
    side_dir(n, "snap", dir, sizeof dir);
    int rc = sprig__repl_rmtree(dir);
    rc = rc ? rc : sprig__storage_snapshot(n->st, dir);
    rc = rc ? rc : list_tree(&l, dir, "");
    rc = rc ? rc : pack(&l, dir, index, out);
    flist_free(&l);
    sprig__repl_rmtree(dir);
    /* every entry up to `index` is in the storage: make it the floor */
    rc = rc ? rc : sprig__storage_raft_set_floor(n->st, index);
    return rc;
}

static int
fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    sprig__cnode *n = node_of(fsm);
    int frc = sprig__fsm_flush(n); /* the copy holds every applied entry */
    if (frc) {
        return frc;
    }
    struct raft_buffer *b = raft_malloc(sizeof *b);
    int rc = b ? take_snapshot(n, b) : SPRIG_ENOMEM;
    if (rc) {
        fprintf(stderr, "sprig: node %llu: snapshot failed: %s\n",
                (unsigned long long)n->id, sprig_errmsg());
        raft_free(b);
        return rc == SPRIG_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
    }
    n->stats.snapshots++;
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static int
fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                      unsigned *n_bufs)
{
    (void)fsm;
    for (unsigned i = 0; *bufs && i < *n_bufs; i++) {
        raft_free((*bufs)[i].base);
    }
    raft_free(*bufs);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* ---- restore
 * ----------------------------------------------------------------- */

/* Is `rel` a plain relative path (no "..", not absolute, no empty part)? */
static bool
safe_rel(const char *rel)
{
    if (!rel[0] || rel[0] == '/') {
        return false;
    }
    for (const char *p = rel; *p;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || (len == 2 && p[0] == '.' && p[1] == '.') ||
            (len == 1 && p[0] == '.')) {
            return false;
        }
        p += len + (e ? 1 : 0);
    }
    return true;
}

static int
write_file(const char *root, const char *rel, const uint8_t *p, uint64_t n)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *s = strchr(path + strlen(root) + 1, '/'); s;
         s = strchr(s + 1, '/')) {
        *s = 0;
        int bad = mkdir(path, 0755) != 0 && errno != EEXIST;
        *s = '/';
        if (bad) {
            return io_err("cannot create a directory for", path);
        }
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        return io_err("cannot create", path);
    }
    uint64_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w <= 0) {
            close(fd);
            return io_err("cannot write", path);
        }
        done += (uint64_t)w;
    }
    int rc = fdatasync(fd) != 0 ? io_err("cannot sync", path) : 0;
    close(fd);
    return rc;
}

/* Unpack the files of a snapshot (past its 16-byte header) into `root`. */
static int
unpack(const uint8_t *p, size_t len, const char *root)
{
    size_t off = 16;
    int rc = mkdir(root, 0755) != 0 ? io_err("cannot create", root) : 0;
    while (rc == 0 && off < len) {
        uint32_t rl = len - off >= 4 ? sprig__get_u32be(p + off) : UINT32_MAX;
        if (rl >= 4096 || len - off - 4 < (size_t)rl + 8) {
            return sprig__err(SPRIG_ECORRUPT,
                              "a snapshot's file record at "
                              "%zu overruns it",
                              off);
        }
        char rel[4096];
        memcpy(rel, p + off + 4, rl);
        rel[rl] = 0;
        uint64_t size = sprig__get_u64be(p + off + 4 + rl);
        off += 4 + rl + 8;
        if (!safe_rel(rel) || size > len - off) {
            return sprig__err(SPRIG_ECORRUPT,
                              "a snapshot names a bad file "
                              "('%s', %llu bytes)",
                              rel, (unsigned long long)size);
        }
        rc = write_file(root, rel, p + off, size);
        off += size;
    }
    return rc;
}

static int
restore_from(sprig__cnode *n, const struct raft_buffer *buf)
{
    const uint8_t *p = buf->base;
    if (buf->len < 16 || memcmp(p, SNAP_MAGIC, 8) != 0) {
        return sprig__err(SPRIG_ECORRUPT, "not a Sprig snapshot (%zu bytes)",
                          buf->len);
    }
    uint64_t index = sprig__get_u64be(p + 8), floor = 0;
    int rc = sprig__storage_raft_floor(n->st, &floor);
    if (rc == 0 && floor >= index) {
        n->stats.restore_kept++; /* a restart: the storage has it all */
        return SPRIG_OK;
    }
    char fresh[4096];
    side_dir(n, "restore", fresh, sizeof fresh);
    rc = rc ? rc : sprig__repl_rmtree(fresh);
    rc = rc ? rc : unpack(p, buf->len, fresh);
    /* in place: the server's handles, feeds and watches stay valid */
    rc = rc ? rc : sprig__storage_install(n->st, fresh);
    rc = rc ? rc : sprig__storage_raft_set_floor(n->st, index);
    sprig__repl_rmtree(fresh);
    n->stats.restored += rc == 0;
    if (rc == 0) {
        fprintf(stderr,
                "sprig: node %llu installed a snapshot at index %llu "
                "(%zu bytes) in place\n",
                (unsigned long long)n->id, (unsigned long long)index, buf->len);
    }
    return rc;
}

static int
fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    sprig__cnode *n = node_of(fsm);
    int frc = sprig__fsm_flush(n);
    if (frc) {
        return frc;
    }
    int rc = restore_from(n, buf);
    if (rc) {
        fprintf(stderr, "sprig: node %llu: restoring a snapshot failed: %s\n",
                (unsigned long long)n->id, sprig_errmsg());
        return rc == SPRIG_ECORRUPT ? RAFT_CORRUPT : RAFT_IOERR;
    }
    raft_free(buf->base); /* ours on success */
    return 0;
}

void
sprig__fsm_init(sprig__cnode *n)
{
    memset(&n->fsm, 0, sizeof n->fsm);
    n->fsm.version = 2;
    n->fsm.data = n;
    n->fsm.apply = fsm_apply;
    n->fsm.snapshot = fsm_snapshot;
    n->fsm.restore = fsm_restore;
    n->fsm.snapshot_finalize = fsm_snapshot_finalize;
}
