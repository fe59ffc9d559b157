/*
 * udp_proxy.h -- a UDP relay for the QUIC tests: a client talks to the
 * proxy's port, the proxy forwards to the server and back, dropping and
 * reordering datagrams with the probabilities given (reproducible from
 * the seed), so loss and reordering happen in the test's own UDP path.
 * One client address at a time (the first one heard; a new one replaces
 * it, as after a reconnect).  Runs on its own thread; poll(2) based.
 */
#ifndef SPRIG_UDP_PROXY_H
#define SPRIG_UDP_PROXY_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

typedef struct udp_proxy {
    int front, back; /* client side; server side (connected) */
    int port;        /* the front's port */
    struct sockaddr_in client;
    bool have_client;
    double loss, reorder; /* 0..1 */
    uint64_t rng;
    atomic_bool stop;
    atomic_ulong relayed, dropped, reordered;
    uint8_t held[2048]; /* a datagram held back, to reorder */
    size_t held_len;
    int held_dir;          /* 0: to the server, 1: to the client */
    uint8_t rec[16][1500]; /* the first datagrams to the server, kept */
    size_t rec_len[16];
    int nrec;
    pthread_t thread;
} udp_proxy;

static inline double
udp_proxy_unit(udp_proxy *p)
{
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return (double)((p->rng * 2685821657736338717ull) >> 11) /
           9007199254740992.0;
}

static inline void
udp_proxy_out(udp_proxy *p, int dir, const uint8_t *d, size_t n)
{
    if (dir == 0) {
        (void)!send(p->back, d, n, 0);
    } else if (p->have_client) {
        (void)!sendto(p->front, d, n, 0, (struct sockaddr *)&p->client,
                      sizeof p->client);
    }
}

/* One datagram in direction `dir`: drop, hold (reorder), or pass. */
static inline void
udp_proxy_relay(udp_proxy *p, int dir, const uint8_t *d, size_t n)
{
    if (udp_proxy_unit(p) < p->loss) {
        atomic_fetch_add(&p->dropped, 1);
        return;
    }
    if (p->held_len == 0 && n <= sizeof p->held &&
        udp_proxy_unit(p) < p->reorder) {
        memcpy(p->held, d, n); /* goes out after the next one */
        p->held_len = n;
        p->held_dir = dir;
        atomic_fetch_add(&p->reordered, 1);
        return;
    }
    udp_proxy_out(p, dir, d, n);
    atomic_fetch_add(&p->relayed, 1);
    if (p->held_len) {
        udp_proxy_out(p, p->held_dir, p->held, p->held_len);
        p->held_len = 0;
    }
}

static inline void *
udp_proxy_main(void *arg)
{
    udp_proxy *p = arg;
    uint8_t buf[65536];
    struct pollfd fds[2] = {{p->front, POLLIN, 0}, {p->back, POLLIN, 0}};
    while (!atomic_load(&p->stop)) {
        if (poll(fds, 2, 20) <= 0) {
            if (p->held_len) { /* nothing followed: let it go */
                udp_proxy_out(p, p->held_dir, p->held, p->held_len);
                p->held_len = 0;
            }
            continue;
        }
        if (fds[0].revents & POLLIN) {
            struct sockaddr_in from;
            socklen_t fl = sizeof from;
            ssize_t n = recvfrom(p->front, buf, sizeof buf, 0,
                                 (struct sockaddr *)&from, &fl);
            if (n > 0 && p->nrec < 16 && (size_t)n <= sizeof p->rec[0]) {
                memcpy(p->rec[p->nrec], buf, (size_t)n);
                p->rec_len[p->nrec++] = (size_t)n;
            }
            if (n > 0) {
                p->client = from;
                p->have_client = true;
                udp_proxy_relay(p, 0, buf, (size_t)n);
            }
        }
        if (fds[1].revents & POLLIN) {
            ssize_t n = recv(p->back, buf, sizeof buf, 0);
            if (n > 0) {
                udp_proxy_relay(p, 1, buf, (size_t)n);
            }
        }
    }
    return NULL;
}

/* Relay 127.0.0.1:<p->port> to 127.0.0.1:`server_port`. */
static inline void
udp_proxy_start(udp_proxy *p, int server_port, double loss, double reorder,
                uint64_t seed)
{
    struct sockaddr_in a = {0};
    socklen_t al = sizeof a;
    memset(p, 0, sizeof *p);
    p->loss = loss;
    p->reorder = reorder;
    p->rng = seed | 1;
    p->front = socket(AF_INET, SOCK_DGRAM, 0);
    p->back = socket(AF_INET, SOCK_DGRAM, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(p->front, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(p->front, (struct sockaddr *)&a, &al);
    p->port = ntohs(a.sin_port);
    a.sin_port = htons((uint16_t)server_port);
    assert_int_equal(connect(p->back, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(pthread_create(&p->thread, NULL, udp_proxy_main, p), 0);
}

static inline void
udp_proxy_stop(udp_proxy *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    close(p->front);
    close(p->back);
}

#endif
