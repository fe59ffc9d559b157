/*
 * console.h -- the web console's files (issue 15), embedded at build time.
 *
 * A layer of its own over src/core: a constant table of the files of
 * console/, the JavaScript client and the npm packages it imports in a
 * browser (src/console/CMakeLists.txt lists them; cmake/embed_files.cmake
 * writes the table), each at the URL path it is served at, with its
 * content type and ETag; and the Content-Security-Policy of the console
 * page.  The server's HTTP pages (src/server/http_srv.c) serve them.  No
 * file system is read at run time: a path not in the table does not exist.
 */
#ifndef SPRIG_CONSOLE_H
#define SPRIG_CONSOLE_H

#include "core/core.h"

/** One embedded file.  Everything is static data. */
typedef struct sprig__asset {
    const char *path; /* URL path: "/" (index.html), "/console/app.js"   */
    const char *type; /* Content-Type: "text/javascript; charset=utf-8"  */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted: "\"0123456789abcdef\"" (its SHA-256's) */
} sprig__asset;

/** The table, in path order, ending with a row whose path is NULL. */
extern const sprig__asset sprig__console_assets[];

/**
 * The file served at `path` (exact match, case-sensitive; "/" is the
 * console page), or NULL.  Any thread.
 */
const sprig__asset *sprig__console_find(const char *path);

/**
 * The Content-Security-Policy of the console page: scripts, styles,
 * images and connections of its own origin only, plus the inline import
 * map of index.html by its hash; no framing, no plugins, no forms
 * elsewhere.  Static storage, computed once; any thread.  Never NULL.
 */
const char *sprig__console_csp(void);

#endif
