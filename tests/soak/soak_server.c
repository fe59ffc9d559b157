/*
 * soak_server.c -- the server process of `sprig-soak` (soak.h): a child
 * forked before any thread exists, which opens the storage directory,
 * registers the soak schema, creates the database and one user allowed
 * everything, and serves WebSockets on an ephemeral loopback port with
 * authentication enforced (as `sprig serve` does, but with no limit of
 * connections per address: every client is 127.0.0.1).  It reports the
 * port through a pipe, waits for SIGTERM, shuts down gracefully and
 * exits, so ASan's leak check runs over the whole server.  Also the
 * /proc readings of that process.
 */
#include "soak.h"

#include <sprig/auth.h>
#include <sprig/server.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const sprig_view_def soak_views[] = {
    {.name = SOAK_VIEW,
     .version = 1,
     .policy = SPRIG_VIEW_LAZY,
     .json_key = "w",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
};
static const sprig_collection_def soak_colls[] = {
    {SOAK_COLL, SPRIG_ID_NATURAL, 0, soak_views, 1},
};
static const sprig_schema_def soak_schema = {"soak", soak_colls, 1};

uint64_t
soak_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The user the clients log in as, in the group "soakers" granted all. */
static int
make_user(sprig_server *srv)
{
    sprig_auth *a = sprig_server_auth(srv);
    int rc = a ? SPRIG_OK : SPRIG_EINVAL;
    rc = rc ? rc : sprig_auth_user_create(a, NULL, SOAK_USER, SOAK_PASSWORD);
    rc = rc ? rc : sprig_auth_group_create(a, NULL, "soakers");
    rc = rc ? rc : sprig_auth_group_grant(a, NULL, "soakers", "*", "sprig");
    rc = rc ? rc : sprig_auth_user_group(a, NULL, SOAK_USER, "soakers", true);
    return rc;
}

static int
server_prepare(const char *dir, sprig_server **out)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    sprig_auth_options ao;
    sprig_auth_options_min(&ao); /* cheap argon2id: 200+ logins a round */
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.ws_listen = "127.0.0.1:0";
    o.max_connections_per_address = 0;
    o.auth_options = &ao;
    int rc = sprig_server_new(&so, &o, out);
    if (rc) {
        return rc;
    }
    sprig_storage *st = sprig_server_storage(*out);
    rc = sprig_storage_register_schema(st, &soak_schema);
    rc = rc ? rc : sprig_storage_create_database(st, SOAK_DB, "soak", true);
    rc = rc ? rc : make_user(*out);
    return rc ? rc : sprig_server_start(*out);
}

/* The child: serve until SIGTERM (blocked here, so every server thread
 * inherits the mask and sigwait takes it). */
static int
server_child(const char *dir, int fd)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sprig_server *srv = NULL;
    int rc = server_prepare(dir, &srv);
    int port = rc ? -1 : sprig_server_ws_port(srv);
    if (rc) {
        fprintf(stderr, "soak server: %s: %s\n", sprig_strerror(rc),
                sprig_errmsg());
    }
    if (write(fd, &port, sizeof port) != (ssize_t)sizeof port) {
        rc = SPRIG_EIO;
    }
    close(fd);
    if (!rc) {
        int sig;
        sigwait(&set, &sig);
        rc = sprig_server_shutdown(srv, 5000);
    }
    sprig_server_free(srv);
    return rc ? 1 : 0;
}

pid_t
soak_server_start(const char *dir, int *port)
{
    int p[2];
    if (pipe(p) != 0) {
        perror("soak: pipe");
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        exit(server_child(dir, p[1]));
    }
    close(p[1]);
    *port = -1;
    ssize_t n = pid > 0 ? read(p[0], port, sizeof *port) : -1;
    close(p[0]);
    if (pid < 0 || n != (ssize_t)sizeof *port || *port <= 0) {
        fprintf(stderr, "soak: the server did not start\n");
        if (pid > 0) {
            waitpid(pid, NULL, 0);
        }
        return -1;
    }
    return pid;
}

int
soak_server_stop(pid_t pid)
{
    int status;
    kill(pid, SIGTERM);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "soak: the server died of signal %d\n",
                WTERMSIG(status));
        return -1;
    }
    return WEXITSTATUS(status);
}

/* A "Name:   123 kB" line of /proc/PID/status, or -1. */
static long
status_field(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    return p ? strtol(p + strlen(name), NULL, 10) : -1;
}

static long
count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(path);
    if (!d) {
        return -1;
    }
    long n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

int
soak_proc_read(pid_t pid, soak_proc *out)
{
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    out->rss_kb = status_field(text, "VmRSS:");
    out->rss_anon_kb = status_field(text, "RssAnon:");
    out->threads = status_field(text, "Threads:");
    out->fds = count_fds(pid);
    return out->rss_kb < 0 || out->fds < 0 ? -1 : 0;
}
