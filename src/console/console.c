/*
 * console.c -- lookups in the web console's embedded file table
 * (console.h), and the Content-Security-Policy of its page.
 *
 * The page (index.html) carries one inline script, its import map (which
 * tells the browser where the bare module names the JavaScript client
 * imports live).  A strict policy forbids inline scripts unless their hash
 * is listed, so the policy is made from the page itself: the SHA-256 of
 * the import map's text, base64, as 'sha256-...'.  It is computed once,
 * at the first call, from the embedded page.
 */
#include "console/console.h"

#include <pthread.h>
#include <stdio.h>

#include <sodium.h>

const sprig__asset *
sprig__console_find(const char *path)
{
    for (const sprig__asset *a = sprig__console_assets; a->path; a++) {
        if (!strcmp(a->path, path)) {
            return a;
        }
    }
    return NULL;
}

static char csp[1024];
static pthread_once_t csp_once = PTHREAD_ONCE_INIT;

/* The text of the page's <script type="importmap">, or NULL. */
static const char *
import_map(const sprig__asset *page, size_t *n)
{
    static const char open[] = "<script type=\"importmap\">";
    const char *s = (const char *)page->data;
    const char *b = strstr(s, open);
    const char *e = b ? strstr(b, "</script>") : NULL;
    if (!e) {
        return NULL;
    }
    b += strlen(open);
    *n = (size_t)(e - b);
    return b;
}

static void
csp_make(void)
{
    char hash[64] = "";
    const sprig__asset *page = sprig__console_find("/");
    size_t n = 0;
    const char *map = page ? import_map(page, &n) : NULL;
    if (map) {
        unsigned char sha[crypto_hash_sha256_BYTES];
        char b64[sodium_base64_ENCODED_LEN(sizeof sha,
                                           sodium_base64_VARIANT_ORIGINAL)];
        crypto_hash_sha256(sha, (const unsigned char *)map, n);
        sodium_bin2base64(b64, sizeof b64, sha, sizeof sha,
                          sodium_base64_VARIANT_ORIGINAL);
        snprintf(hash, sizeof hash, " 'sha256-%s'", b64);
    }
    snprintf(csp, sizeof csp,
             "default-src 'none'; script-src 'self'%s; style-src 'self'; "
             "img-src 'self' data:; connect-src 'self'; "
             "manifest-src 'self'; base-uri 'none'; form-action 'none'; "
             "frame-ancestors 'none'",
             hash);
}

const char *
sprig__console_csp(void)
{
    pthread_once(&csp_once, csp_make);
    return csp;
}
