/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The kernel's KVM uevents on the loop: any VMM's VMs (libvirt or not) announce their creation and end. */
#include <linux/netlink.h>
#include <sys/socket.h>

#include "events.h"
#include "log.h"
#include "uevent.h"

struct KvmWatch {
        sd_event_source *source;
        int fd;
        GuestEventFn fn;
        void *userdata;
};

static int on_uevent(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        KvmWatch *w = userdata;

        for (;;) {
                char buf[UEVENT_MSG_MAX];
                struct sockaddr_nl sender = {};
                struct iovec iov = { buf, sizeof(buf) };
                struct msghdr mh = {
                        .msg_name = &sender, .msg_namelen = sizeof(sender), .msg_iov = &iov, .msg_iovlen = 1
                };
                char reason[96];
                KvmEvent e;
                ssize_t n;

                n = recvmsg(fd, &mh, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        if (errno == ENOBUFS) {
                                /* The socket overflowed: some events are lost, and one may have been KVM's. */
                                w->fn(w->userdata, TRIGGER_GUEST_EVENT, "uevents lost (receive buffer overflow)");
                                continue;
                        }
                        log_debug("Failed to receive a uevent: %m, ignoring");
                        return 0;
                }
                /* Only the kernel (port 0) speaks on this group; anything else is not to be believed. */
                if (sender.nl_pid != 0 || (mh.msg_flags & MSG_TRUNC))
                        continue;
                if (uevent_parse_kvm(buf, (size_t) n, &e) <= 0)
                        continue;
                if (e.pid >= 0)
                        snprintf(reason, sizeof(reason), "KVM VM of PID %lld %s", (long long) e.pid,
                                 e.type == KVM_EVENT_CREATE ? "created" : "destroyed");
                else
                        snprintf(reason, sizeof(reason), "KVM VM %s",
                                 e.type == KVM_EVENT_CREATE ? "created" : "destroyed");
                w->fn(w->userdata, TRIGGER_GUEST_EVENT, reason);
        }
}

/**
 * kvm_watch_new() - listen to the kernel's uevents (NETLINK_KOBJECT_UEVENT, group 1) in @e.
 *
 * No udevd is needed. The socket works only in the host's network namespace, where the kernel sends
 * them. Returns -errno when the socket cannot be made (e.g. a sandbox without AF_NETLINK).
 */
int kvm_watch_new(sd_event *e, GuestEventFn fn, void *userdata, KvmWatch **ret) {
        struct sockaddr_nl addr = { .nl_family = AF_NETLINK, .nl_groups = 1 };
        int size = 1024 * 1024;
        KvmWatch *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fn = fn;
        w->userdata = userdata;
        w->fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
        if (w->fd < 0) {
                r = negative_errno();
                goto fail;
        }
        /* Hosts with many devices send bursts; a larger buffer loses fewer (capped by net.core.rmem_max). */
        (void) setsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        if (bind(w->fd, (struct sockaddr *) &addr, sizeof(addr)) < 0) {
                r = negative_errno();
                goto fail;
        }
        r = sd_event_add_io(e, &w->source, w->fd, EPOLLIN, on_uevent, w);
        if (r < 0)
                goto fail;
        *ret = w;
        return 0;
fail:
        kvm_watch_free(w);
        return r;
}

KvmWatch *kvm_watch_free(KvmWatch *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->source);
        closep(&w->fd);
        free(w);
        return NULL;
}
