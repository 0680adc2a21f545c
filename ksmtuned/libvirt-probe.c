/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Whether a libvirt daemon serves yet, asked in its own wire protocol without blocking the loop. */
#include <sys/socket.h>
#include <sys/un.h>

#include "libvirt-loop.h"
#include "libvirt-probe.h"
#include "util.h"

/*
 * The readiness probe. A starting libvirtd accepts on its socket long before it answers (its drivers
 * probe QEMU first, ~40 s on a fresh host), and virConnectOpen would block our loop all that time. So
 * we send one call that needs no connection (REMOTE_PROC_AUTH_LIST) ourselves, without blocking, and
 * open the real connection only once a reply proves the daemon serves.
 */
#define REMOTE_PROGRAM          0x20008086u
#define REMOTE_PROTOCOL_VERSION 1u
#define REMOTE_PROC_AUTH_LIST   66u
#define VIR_NET_CALL            0u
#define VIR_NET_REPLY           1u

static void put_be32(char *p, uint32_t v) {
        p[0] = (char) (v >> 24);
        p[1] = (char) (v >> 16);
        p[2] = (char) (v >> 8);
        p[3] = (char) v;
}

static uint32_t get_be32(const char *p) {
        const unsigned char *u = (const unsigned char *) p;

        return (uint32_t) u[0] << 24 | (uint32_t) u[1] << 16 | (uint32_t) u[2] << 8 | u[3];
}

void libvirt_probe_init(LibvirtProbe *p) {
        *p = (LibvirtProbe) { .fd = -1 };
}

bool libvirt_probe_running(const LibvirtProbe *p) {
        return p->source;
}

void libvirt_probe_stop(LibvirtProbe *p) {
        p->source = sd_event_source_disable_unref(p->source);
        closep(&p->fd);
        p->fd = -1;
}

static int on_probe(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        LibvirtProbe *p = userdata;
        ssize_t n;

        n = recv(fd, p->buf + p->got, sizeof(p->buf) - p->got, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                libvirt_probe_stop(p);
                p->done(p->userdata, n == 0 ? "the daemon closed the socket" : "cannot read from the socket");
                return 0;
        }
        p->got += (size_t) n;
        if (p->got < 28) /* length word and the 24-byte header */
                return 0;
        libvirt_probe_stop(p);
        if (get_be32(p->buf + 4) != REMOTE_PROGRAM || get_be32(p->buf + 16) != VIR_NET_REPLY) {
                p->done(p->userdata, "unexpected answer on the socket");
                return 0;
        }
        p->done(p->userdata, NULL);
        return 0;
}

/**
 * libvirt_probe_start() - connect to @socket_path and send the call, without blocking; @done is called
 * from the loop with NULL once a reply proves the daemon serves, or with why not.
 *
 * Return: NULL when started, else why it could not be (then @done is not called): a static string, or
 * one in @p valid until the next start.
 */
const char *libvirt_probe_start(LibvirtProbe *p, sd_event *e, const char *socket_path, LibvirtProbeFn done,
                                void *userdata) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char call[28];

        p->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (p->fd < 0)
                return "cannot create a socket";
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
        if (connect(p->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
                snprintf(p->what, sizeof(p->what), "%s: %s", socket_path, strerror(errno));
                libvirt_probe_stop(p);
                return p->what;
        }
        put_be32(call, sizeof(call));
        put_be32(call + 4, REMOTE_PROGRAM);
        put_be32(call + 8, REMOTE_PROTOCOL_VERSION);
        put_be32(call + 12, REMOTE_PROC_AUTH_LIST);
        put_be32(call + 16, VIR_NET_CALL);
        put_be32(call + 20, 1); /* serial */
        put_be32(call + 24, 0); /* status OK */
        /* 28 bytes fit in any socket buffer: on a fresh connected socket this never blocks. */
        if (send(p->fd, call, sizeof(call), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t) sizeof(call)) {
                libvirt_probe_stop(p);
                return "cannot write to the socket";
        }
        p->got = 0;
        p->started = libvirt_loop_now();
        p->done = done;
        p->userdata = userdata;
        if (sd_event_add_io(e, &p->source, p->fd, EPOLLIN, on_probe, p) < 0) {
                libvirt_probe_stop(p);
                return "cannot watch the socket";
        }
        return NULL;
}
