/*
 * cluster_client.c -- what a client needs to talk to a cluster (issue 18):
 * a list of node URLs, the leader named by SPRIG_ENOTLEADER, and request
 * ids on writes (see client_int.h; the connection itself is client.c's).
 *
 * A URL list is "ws://a:5646,b:5646,quic://c:5645": comma-separated, each
 * element a URL of any transport, an element without a scheme taking the
 * first element's ("ws://a:1,b:2" is "ws://a:1" and "ws://b:2").  The
 * client connects to the first node that answers, in list order; when an
 * open connection drops it moves on to the next node.  A follower refusing
 * a write answers SPRIG_ENOTLEADER with a message ending "leader is node N
 * at URL": the client makes that URL its node (adding it to its list when
 * it was not there), waits for its calls in flight on the old connection,
 * reconnects (logging in again as before) and sends the call once more.
 *
 * Request ids: every request of a write row (sprig__api.access ==
 * SPRIG__WRITE) carries the payload field "rid", bin 16: eight random
 * bytes drawn when the client is made, then a big-endian sequence number
 * of the client's writes.  A retry after SPRIG_ENOTLEADER resends the same
 * frame, so the same rid; servers that do not know the field ignore it
 * (unknown fields are ignored, docs/protocol.md).
 */
#include "client/client_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- URL lists ------------------------------------------------------------
 */

/* The scheme prefix of `url` ("ws://"), its length, or 0 when none. */
static size_t
scheme_len(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p || p == url) {
        return 0;
    }
    for (const char *q = url; q < p; q++) {
        if (!isalnum((unsigned char)*q) && !strchr("+.-", *q)) {
            return 0;
        }
    }
    return (size_t)(p - url) + 3;
}

/* Append one element (trimmed) of a list; `prefix` is the first element's
 * scheme.  SPRIG_EINVAL, SPRIG_ENOMEM. */
static int
add_url(char ***urls, size_t *n, const char *s, size_t len, const char *prefix,
        size_t plen)
{
    while (len && isspace((unsigned char)*s)) {
        s++, len--;
    }
    while (len && isspace((unsigned char)s[len - 1])) {
        len--;
    }
    if (len == 0) {
        return sprig__err(SPRIG_EINVAL, "an empty node in the URL list");
    }
    char *u = sprig__malloc(plen + len + 1);
    char **grown = u ? sprig__realloc(*urls, (*n + 1) * sizeof *grown) : NULL;
    if (!grown) {
        sprig__free(u);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    *urls = grown;
    memcpy(u, s, len);
    u[len] = '\0';
    if (!scheme_len(u)) { /* "b:5646" after "ws://a:5646" */
        memcpy(u, prefix, plen);
        memcpy(u + plen, s, len);
        u[plen + len] = '\0';
    }
    grown[(*n)++] = u;
    if (!sprig__tran_for_url(u)) {
        return SPRIG_EINVAL; /* sprig__tran_for_url's detail names it */
    }
    return SPRIG_OK;
}

void
sprig__client_urls_free(char **urls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sprig__free(urls[i]);
    }
    sprig__free(urls);
}

int
sprig__client_urls_parse(const char *list, char ***out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!list) {
        return sprig__err(SPRIG_EINVAL, "the URL is NULL");
    }
    size_t plen = scheme_len(list);
    char **urls = NULL;
    size_t n = 0;
    int rc = SPRIG_OK;
    for (const char *s = list; rc == 0;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        rc = add_url(&urls, &n, s, len, list, plen);
        if (!comma) {
            break;
        }
        s = comma + 1;
    }
    if (rc) {
        sprig__client_urls_free(urls, n);
        return rc;
    }
    *out = urls;
    *n_out = n;
    return SPRIG_OK;
}

/* ---- following the leader -------------------------------------------------
 */

bool
sprig__leader_hint(const char *msg, char *url, size_t cap)
{
    const char *p = msg ? strstr(msg, "leader is node ") : NULL;
    if (!p) {
        return false;
    }
    p += strlen("leader is node ");
    while (isdigit((unsigned char)*p)) {
        p++;
    }
    if (strncmp(p, " at ", 4) != 0) {
        return false;
    }
    p += 4;
    size_t len = strcspn(p, " \t\r\n;\"'");
    while (len && strchr(".,)", p[len - 1])) {
        len--; /* the sentence's own punctuation */
    }
    if (len == 0 || len >= cap) {
        return false;
    }
    memcpy(url, p, len);
    url[len] = '\0';
    return scheme_len(url) != 0 && sprig__tran_for_url(url) != NULL;
}

int
sprig__client_follow(struct sprig_client *c, const char *url)
{
    size_t i = 0;
    while (i < c->n_urls && strcmp(c->urls[i], url) != 0) {
        i++;
    }
    if (i == c->n_urls) { /* a node the list did not name */
        char *u = sprig__strdup(url);
        char **grown =
            u ? sprig__realloc(c->urls, (c->n_urls + 1) * sizeof *grown) : NULL;
        if (!grown) {
            sprig__free(u);
            return sprig__err(SPRIG_ENOMEM, "out of memory");
        }
        c->urls = grown;
        c->urls[c->n_urls++] = u;
    }
    if (i != c->cur) { /* else another call followed it already */
        c->cur = i;
        c->url = c->urls[i];
        c->tries = 0;
        c->switching = c->state != CL_DOWN; /* close the old connection */
    }
    uv_async_send(&c->wake);
    return SPRIG_OK;
}

void
sprig__client_next_node(struct sprig_client *c)
{
    c->cur = (c->cur + 1) % c->n_urls;
    c->url = c->urls[c->cur];
}

/* ---- request ids ------------------------------------------------------------
 */

void
sprig__client_rid_init(struct sprig_client *c)
{
    if (getrandom(c->rid_client, sizeof c->rid_client, 0) !=
        (ssize_t)sizeof c->rid_client) {
        /* no entropy source: the clock and the address still tell clients
         * apart in practice */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        x ^= (uint64_t)(uintptr_t)c;
        memcpy(c->rid_client, &x, sizeof x);
    }
}

void
sprig__client_rid_next(struct sprig_client *c, uint8_t rid[16])
{
    pthread_mutex_lock(&c->lock);
    uint64_t seq = ++c->rid_seq;
    pthread_mutex_unlock(&c->lock);
    memcpy(rid, c->rid_client, 8);
    for (int i = 0; i < 8; i++) {
        rid[8 + i] = (uint8_t)(seq >> (56 - 8 * i));
    }
}
