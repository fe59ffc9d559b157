/*
 * changes_api.c -- the changes feed (issue 15): a cursor over the
 * transaction log that waits for commits.
 *
 * A feed remembers the id of the last log entry it read and reads the
 * next page of the log (sprig_list_executed_txns, the placement's own
 * `list_executed`) when the page in hand is used up.  Nothing else is
 * ever a source of changes, so the backlog and the live part are the same
 * loop: no gap and no duplicate, by construction, whatever commits while
 * the feed switches.  Waiting: a placement that can tell commits (`watch`
 * in its ops table: the local engine's writer) gives an eventfd that is
 * written after each commit; the feed reads it back to zero *before*
 * reading the log, so a commit that lands after that read writes it
 * again and the wait cannot miss it.  A placement without `watch` is
 * polled: a timerfd firing every SPRIG__CHANGES_POLL_MS.
 *
 * Contents (SPRIG_CHANGES_CONTENTS) are read with sprig_get when a change
 * is delivered, and given only when the document still has the change's
 * revision; a later change of it is further on in the log anyway.
 */
#include "core.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define PAGE 1000 /* log entries read at once */
/* The longest a wait goes without re-reading the log. */
#define SPRIG__CHANGES_RECHECK_MS 1000

struct sprig_changes {
    sprig_db *db;
    uint64_t since; /* log entries up to this id have been read */
    uint64_t last;  /* last entry whose changes were all delivered */
    char *coll;     /* NULL: every collection */
    unsigned flags;
    sprig_txn_log *page;
    size_t i, j; /* next change: entry i, change j of `page` */
    int fd;      /* eventfd (watch) or timerfd (polling) */
    void *token; /* watch token, NULL when polling */
    sprig_doc *doc;
};

static int
poll_timer(sprig_changes *c)
{
    c->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (c->fd < 0) {
        return sprig__err(SPRIG_EIO, "timerfd: %s", strerror(errno));
    }
    struct itimerspec its = {{0, SPRIG__CHANGES_POLL_MS * 1000000L},
                             {0, SPRIG__CHANGES_POLL_MS * 1000000L}};
    timerfd_settime(c->fd, 0, &its, NULL);
    return SPRIG_OK;
}

int
sprig_changes_open(sprig_db *db, uint64_t since, const char *collection,
                   unsigned flags, sprig_changes **out)
{
    if (!out || !db || (flags & ~SPRIG_CHANGES_CONTENTS)) {
        return sprig__err(SPRIG_EINVAL, "%s",
                          !out  ? "out is NULL"
                          : !db ? "database handle is NULL"
                                : "unknown flags");
    }
    *out = NULL;
    sprig_changes *c = sprig__calloc(1, sizeof *c);
    if (!c) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    c->db = db;
    c->since = c->last = since;
    c->flags = flags;
    c->fd = -1;
    if (collection && *collection && !(c->coll = sprig__strdup(collection))) {
        sprig__free(c);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    int rc =
        db->ops->watch ? db->ops->watch(db, &c->fd, &c->token) : poll_timer(c);
    if (rc) {
        c->token = NULL;
        c->fd = -1;
        sprig_changes_close(c);
        return rc;
    }
    *out = c;
    return SPRIG_OK;
}

/* Read the wake-up fd back to zero (both kinds hold an 8-byte counter). */
static void
drain_fd(sprig_changes *c)
{
    uint64_t n;
    while (read(c->fd, &n, sizeof n) == (ssize_t)sizeof n) {
    }
}

/* The page in hand is used up: read the next one (drained fd first). */
static int
next_page(sprig_changes *c)
{
    drain_fd(c);
    sprig_txn_log_free(c->page);
    c->page = NULL;
    c->i = c->j = 0;
    return sprig_list_executed_txns(c->db, c->since + 1, PAGE, &c->page);
}

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for the fd, at most SPRIG__CHANGES_RECHECK_MS: a wake-up that
 * cannot come (a remote watch whose connection closed) only delays. */
static int
wait_fd(sprig_changes *c, int timeout_ms)
{
    struct pollfd p = {c->fd, POLLIN, 0};
    int n, slice = timeout_ms < 0 || timeout_ms > SPRIG__CHANGES_RECHECK_MS
                       ? SPRIG__CHANGES_RECHECK_MS
                       : timeout_ms;
    do {
        n = poll(&p, 1, slice);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return sprig__err(SPRIG_EIO, "poll: %s", strerror(errno));
    }
    return SPRIG_OK; /* woken, or the slice passed: re-read the log */
}

/* Fill `out` from change `ch` of the current entry (contents if asked). */
static int
fill(sprig_changes *c, const sprig_change *ch, sprig_change_event *out)
{
    memset(out, 0, sizeof *out);
    out->txn_id = sprig_txn_log_id(c->page, c->i);
    out->timestamp_ms = sprig_txn_log_timestamp_ms(c->page, c->i);
    out->collection = ch->collection;
    out->id = ch->id;
    out->revision = ch->revision;
    out->deleted = ch->deleted;
    sprig_doc_free(c->doc);
    c->doc = NULL;
    if (!(c->flags & SPRIG_CHANGES_CONTENTS) || ch->deleted) {
        return SPRIG_OK;
    }
    int rc = sprig_get(c->db, ch->collection, ch->id, &c->doc);
    if (rc == SPRIG_ENOTFOUND &&
        sprig_error_info()->kind == SPRIG_ERROR_KIND_DOCUMENT) {
        return SPRIG_OK; /* deleted since: its deletion follows */
    }
    if (rc) {
        return rc;
    }
    if (sprig_doc_header(c->doc).revision == ch->revision) {
        out->has_contents = true;
        out->contents = sprig_doc_contents(c->doc);
    }
    return SPRIG_OK;
}

/* Does a change of entry i from c->j on pass the filter? */
static bool
matches_after(const sprig_changes *c, size_t m)
{
    for (size_t j = c->j; j < m; j++) {
        sprig_change ch;
        sprig_txn_log_change(c->page, c->i, j, &ch);
        if (!c->coll || strcmp(c->coll, ch.collection) == 0) {
            return true;
        }
    }
    return false;
}

/* The next change of the page in hand that passes the filter: 1 found,
 * 0 the page is used up. */
static int
from_page(sprig_changes *c, sprig_change_event *out)
{
    size_t n = c->page ? sprig_txn_log_count(c->page) : 0;
    for (; c->i < n; c->i++, c->j = 0) {
        uint64_t id = sprig_txn_log_id(c->page, c->i);
        size_t m = sprig_txn_log_change_count(c->page, c->i);
        c->since = id;
        while (c->j < m) {
            sprig_change ch;
            sprig_txn_log_change(c->page, c->i, c->j++, &ch);
            if (c->coll && strcmp(c->coll, ch.collection) != 0) {
                continue;
            }
            int rc = fill(c, &ch, out);
            if (!rc && !matches_after(c, m)) {
                c->last = id; /* its last change for this feed */
            }
            return rc ? rc : 1;
        }
        c->last = id; /* every change of entry i delivered */
    }
    return 0;
}

int
sprig_changes_next(sprig_changes *c, int timeout_ms, sprig_change_event *out)
{
    if (!c || !out || timeout_ms < -1) {
        return sprig__err(SPRIG_EINVAL, "%s",
                          !c     ? "feed is NULL"
                          : !out ? "out is NULL"
                                 : "timeout_ms below -1");
    }
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int rc = from_page(c, out);
        if (rc) {
            return rc < 0 ? rc : SPRIG_OK;
        }
        if ((rc = next_page(c)) != SPRIG_OK) {
            return rc;
        }
        if (sprig_txn_log_count(c->page) > 0) {
            continue;
        }
        int64_t left = timeout_ms < 0 ? -1 : deadline - mono_ms();
        if (timeout_ms >= 0 && left <= 0) {
            return sprig__err(SPRIG_ETIMEDOUT, "no change yet");
        }
        if ((rc = wait_fd(c, (int)left)) != SPRIG_OK) {
            return rc;
        }
    }
}

int
sprig_changes_fd(sprig_changes *c)
{
    return c ? c->fd : -1;
}

uint64_t
sprig_changes_last(const sprig_changes *c)
{
    return c ? c->last : 0;
}

void
sprig_changes_close(sprig_changes *c)
{
    if (!c) {
        return;
    }
    if (c->token) {
        c->db->ops->unwatch(c->db, c->token);
    } else if (c->fd >= 0) {
        close(c->fd);
    }
    sprig_txn_log_free(c->page);
    sprig_doc_free(c->doc);
    sprig__free(c->coll);
    sprig__free(c);
}
