/*
 * error.c -- result codes, their names, and the per-thread error detail.
 *
 * Bottom of src/core.  Every layer reports a failure by calling sprig__err()
 * with a code and a sentence; the public sprig_errmsg() reads it back on the
 * same thread.
 */
#include "core.h"

#include <stdio.h>

static _Thread_local char errmsg_buf[512];

const char *
sprig_version(void)
{
    return SPRIG_VERSION_STRING;
}

const char *
sprig_strerror(int rc)
{
    switch (rc) {
    case SPRIG_OK: return "ok";
    case SPRIG_ENOTFOUND: return "not found";
    case SPRIG_ECONFLICT: return "conflict";
    case SPRIG_EEXIST: return "already exists";
    case SPRIG_EINVAL: return "invalid argument";
    case SPRIG_ESCHEMA: return "schema mismatch";
    case SPRIG_EUNIQUE: return "unique key violation";
    case SPRIG_ETOOBIG: return "too big";
    case SPRIG_ENOMEM: return "out of memory";
    case SPRIG_EIO: return "I/O error";
    case SPRIG_EFULL: return "storage full";
    case SPRIG_ECORRUPT: return "corrupt data";
    case SPRIG_EPERM: return "permission denied";
    case SPRIG_EAUTH: return "authentication failed";
    case SPRIG_EPROTO: return "protocol error";
    case SPRIG_ECLOSED: return "closed";
    case SPRIG_ETIMEDOUT: return "timed out";
    case SPRIG_ECONNECT: return "connection failed";
    case SPRIG_EBUSY: return "busy";
    case SPRIG_ENOTLEADER: return "not the leader";
    case SPRIG_ERANGE: return "out of range";
    default: return "unknown error";
    }
}

const char *
sprig_errmsg(void)
{
    return errmsg_buf;
}

int
sprig__err(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg_buf, sizeof errmsg_buf, fmt, ap);
    va_end(ap);
    return rc;
}
