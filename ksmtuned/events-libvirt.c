/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libvirt's domain lifecycle events on our sd-event loop; libvirt itself is loaded only when it is in use. */
#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/inotify.h>
#include <sys/un.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "events.h"
#include "log.h"
#include "schedule.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define BACKOFF_MIN (1 * USEC_PER_SEC)
#define BACKOFF_MAX (30 * USEC_PER_SEC)
/* libvirtd answers nothing until its drivers are up: ~40 s on a first start here; wait longer than that. */
#define PROBE_TIMEOUT (180 * USEC_PER_SEC)

/*
 * libvirt, resolved at run time. Linking it would map ~60 libraries (TLS, Kerberos, LDAP, curl) into a
 * root daemon on every host, libvirt or not; this way only hosts that run libvirt pay for it.
 */
#define LIBVIRT_SYMBOLS(X)                          \
        X(virEventRegisterImpl)                     \
        X(virSetErrorFunc)                          \
        X(virGetLastErrorMessage)                   \
        X(virConnectOpenReadOnly)                   \
        X(virConnectClose)                          \
        X(virConnectSetKeepAlive)                   \
        X(virConnectRegisterCloseCallback)          \
        X(virConnectUnregisterCloseCallback)        \
        X(virConnectDomainEventRegisterAny)         \
        X(virConnectDomainEventDeregisterAny)       \
        X(virDomainGetName)

static struct {
        void *dl;
        bool failed;
#define X(f) __typeof__(f) *f;
        LIBVIRT_SYMBOLS(X)
#undef X
} lv;

static void silence_libvirt(void *userdata, virErrorPtr error) {
        /* libvirt prints every error to stderr by default; we report what matters ourselves. */
}

/* The event implementation below, registered with libvirt once per process. */
static sd_event *impl_event;
static void impl_register(void);

static int libvirt_load(void) {
        if (lv.dl)
                return 0;
        if (lv.failed)
                return -ENOENT;
        lv.dl = dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!lv.dl) {
                lv.failed = true;
                log_warning("Cannot load libvirt.so.0 (%s): libvirt's guest events are not watched", dlerror());
                return -ENOENT;
        }
#define X(f)                                                                                      \
        lv.f = (__typeof__(f) *) dlsym(lv.dl, #f);                                                \
        if (!lv.f) {                                                                              \
                log_warning("libvirt.so.0 lacks %s: libvirt's guest events are not watched", #f); \
                dlclose(lv.dl);                                                                   \
                lv.dl = NULL;                                                                     \
                lv.failed = true;                                                                 \
                return -ENOENT;                                                                   \
        }
        LIBVIRT_SYMBOLS(X)
#undef X
        lv.virSetErrorFunc(NULL, silence_libvirt);
        impl_register();
        return 0;
}

bool libvirt_loaded(void) {
        return lv.dl;
}

/* ---- libvirt's event loop interface, implemented with sd-event sources ---- */

typedef struct ImplWatch {
        struct ImplWatch *next;
        int id;
        sd_event_source *source;
        bool timer;
        int frequency; /* timers: ms; -1 off, 0 every iteration */
        virEventHandleCallback handle_cb;
        virEventTimeoutCallback timeout_cb;
        void *opaque;
        virFreeCallback ff;
} ImplWatch;

static ImplWatch *impl_watches;
static ImplWatch *impl_releasing; /* removed, their free callback not run yet */
static int impl_next_id = 1;

static void impl_unlink(ImplWatch **list, ImplWatch *w) {
        for (ImplWatch **p = list; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        return;
                }
}

static ImplWatch *impl_find(int id, bool timer) {
        for (ImplWatch *w = impl_watches; w; w = w->next)
                if (w->id == id && w->timer == timer)
                        return w;
        return NULL;
}

static uint32_t to_epoll(int events) {
        return (events & VIR_EVENT_HANDLE_READABLE ? EPOLLIN : 0) |
               (events & VIR_EVENT_HANDLE_WRITABLE ? EPOLLOUT : 0);
}

static int from_epoll(uint32_t revents) {
        return (revents & EPOLLIN ? VIR_EVENT_HANDLE_READABLE : 0) |
               (revents & EPOLLOUT ? VIR_EVENT_HANDLE_WRITABLE : 0) |
               (revents & EPOLLERR ? VIR_EVENT_HANDLE_ERROR : 0) | (revents & EPOLLHUP ? VIR_EVENT_HANDLE_HANGUP : 0);
}

static int impl_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ImplWatch *w = userdata;

        w->handle_cb(w->id, fd, from_epoll(revents), w->opaque);
        return 0;
}

/* Give a new watch its id and put it in the list; returns the id libvirt will refer to it by. */
static int impl_link(ImplWatch *w, void *opaque, virFreeCallback ff) {
        w->id = impl_next_id++;
        w->opaque = opaque;
        w->ff = ff;
        w->next = impl_watches;
        impl_watches = w;
        return w->id;
}

static int impl_add_handle(int fd, int events, virEventHandleCallback cb, void *opaque, virFreeCallback ff) {
        ImplWatch *w = calloc(1, sizeof(*w));

        if (!w)
                return -1;
        if (sd_event_add_io(impl_event, &w->source, fd, to_epoll(events), impl_on_io, w) < 0) {
                free(w);
                return -1;
        }
        if (events == 0)
                (void) sd_event_source_set_enabled(w->source, SD_EVENT_OFF);
        w->handle_cb = cb;
        return impl_link(w, opaque, ff);
}

static void impl_update_handle(int id, int events) {
        ImplWatch *w = impl_find(id, false);

        if (!w)
                return;
        if (events == 0) {
                (void) sd_event_source_set_enabled(w->source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_io_events(w->source, to_epoll(events));
        (void) sd_event_source_set_enabled(w->source, SD_EVENT_ON);
}

/* libvirt wants the free callback run later from the loop, never from inside its remove call. */
static int impl_on_release(sd_event_source *s, void *userdata) {
        ImplWatch *w = userdata;

        impl_unlink(&impl_releasing, w);
        if (w->ff)
                w->ff(w->opaque);
        sd_event_source_disable_unref(w->source); /* freed once this dispatch returns */
        free(w);
        return 0;
}

static int impl_remove(int id, bool timer) {
        ImplWatch **p, *w;

        for (p = &impl_watches; *p; p = &(*p)->next)
                if ((*p)->id == id && (*p)->timer == timer)
                        break;
        if (!*p)
                return -1;
        w = *p;
        *p = w->next;
        w->source = sd_event_source_disable_unref(w->source);
        /* Once the loop has ended (-ESTALE) the free callback waits for libvirt_shutdown(), which runs it. */
        if (sd_event_add_defer(impl_event, &w->source, impl_on_release, w) < 0)
                w->source = NULL;
        w->next = impl_releasing;
        impl_releasing = w;
        return 0;
}

static int impl_remove_handle(int id) {
        return impl_remove(id, false);
}

/* The loop's idea of now, which its timers use; the clock itself outside a loop iteration. */
static uint64_t loop_now_usec(void) {
        uint64_t t;

        if (sd_event_now(impl_event, CLOCK_MONOTONIC, &t) < 0)
                t = now_usec(CLOCK_MONOTONIC);
        return t;
}

static void impl_arm_timer(ImplWatch *w) {
        if (w->frequency < 0) {
                (void) sd_event_source_set_enabled(w->source, SD_EVENT_OFF);
                return;
        }
        /* Frequency 0 means "on every iteration": a time already past is due again at once. */
        (void) sd_event_source_set_time(w->source, loop_now_usec() + (uint64_t) w->frequency * 1000);
        (void) sd_event_source_set_enabled(w->source, SD_EVENT_ON);
}

static int impl_on_time(sd_event_source *s, uint64_t usec, void *userdata) {
        ImplWatch *w = userdata;
        int id = w->id;

        impl_arm_timer(w); /* periodic: re-armed before the callback, which may change or remove it */
        w->timeout_cb(id, w->opaque);
        return 0;
}

static int impl_add_timeout(int frequency, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff) {
        ImplWatch *w = calloc(1, sizeof(*w));

        if (!w)
                return -1;
        if (sd_event_add_time(impl_event, &w->source, CLOCK_MONOTONIC, 0, 1000, impl_on_time, w) < 0) {
                free(w);
                return -1;
        }
        w->timer = true;
        w->frequency = frequency;
        w->timeout_cb = cb;
        impl_arm_timer(w);
        return impl_link(w, opaque, ff);
}

static void impl_update_timeout(int id, int frequency) {
        ImplWatch *w = impl_find(id, true);

        if (!w)
                return;
        w->frequency = frequency;
        impl_arm_timer(w);
}

static int impl_remove_timeout(int id) {
        return impl_remove(id, true);
}

static void impl_register(void) {
        lv.virEventRegisterImpl(impl_add_handle, impl_update_handle, impl_remove_handle, impl_add_timeout,
                                impl_update_timeout, impl_remove_timeout);
}

/* ---- the connection ---- */

struct LibvirtWatch {
        sd_event *event;
        char *uri;
        char socket_path[108]; /* empty: no local socket to wait for (remote or in-process URIs) */
        GuestEventFn fn;
        void *userdata;

        LibvirtState state;
        Backoff backoff;
        sd_event_source *retry;   /* the next attempt */
        sd_event_source *probe;   /* io on the probe socket */
        sd_event_source *cleanup; /* a closed connection, released outside libvirt's callback */
        sd_event_source *inotify; /* the socket's directory, to try at once when the socket appears */
        int probe_fd;
        size_t probe_got;
        char probe_buf[32];
        uint64_t probe_started;

        virConnectPtr conn;
        int callback_id;
        bool ever_connected;
        bool outage_reported; /* one info line per outage, not one per attempt */
};

const char *libvirt_state_to_string(LibvirtState s) {
        switch (s) {
        case LIBVIRT_WAITING:
                return "waiting for libvirtd";
        case LIBVIRT_CONNECTING:
                return "connecting to libvirt";
        case LIBVIRT_CONNECTED:
                return "libvirt connected";
        case LIBVIRT_BACKING_OFF:
                return "libvirt unreachable, retrying";
        case LIBVIRT_UNAVAILABLE:
                return "libvirt library unavailable";
        }
        return "?";
}

LibvirtState libvirt_watch_state(const LibvirtWatch *w) {
        return w->state;
}

/**
 * libvirt_socket_for_uri() - the read-only socket a local "DRIVER:///system" URI connects to.
 *
 * The per-driver daemon's socket (virtqemud) where it exists, else the monolithic libvirtd's; when
 * neither exists yet, the monolithic one, to wait for. Returns 1 with the path, or 0 for URIs that
 * name no local socket (remote hosts, libvirt's in-process test driver, session daemons, an explicit
 * ?socket=), which are connected to without waiting.
 */
int libvirt_socket_for_uri(const char *uri, char *buf, size_t size) {
        char driver[32], per_driver[128];
        const char *p = strstr(uri, ":///system");
        size_t n;

        if (!p || (p[10] != '\0' && p[10] != '?') || strstr(uri, "socket="))
                return 0;
        n = strcspn(uri, "+:");
        if (n == 0 || n >= sizeof(driver) || (uri[n] == '+' && strncmp(uri + n, "+unix:", 6) != 0))
                return 0;
        memcpy(driver, uri, n);
        driver[n] = '\0';
        snprintf(per_driver, sizeof(per_driver), "/run/libvirt/virt%sd-sock-ro", driver);
        snprintf(buf, size, "%s", access(per_driver, F_OK) == 0 ? per_driver : "/run/libvirt/libvirt-sock-ro");
        return 1;
}

static void watch_schedule(LibvirtWatch *w, uint64_t delay);

static void watch_failed(LibvirtWatch *w, const char *what) {
        uint64_t delay = backoff_fail(&w->backoff);

        if (!w->outage_reported) {
                log_info("libvirt at %s is not available (%s); retrying with back-off up to %llu s", w->uri, what,
                         (unsigned long long) (BACKOFF_MAX / USEC_PER_SEC));
                w->outage_reported = true;
        } else
                log_debug("libvirt at %s: %s; next attempt in %llu ms", w->uri, what,
                          (unsigned long long) (delay / 1000));
        w->state = w->socket_path[0] && access(w->socket_path, F_OK) < 0 ? LIBVIRT_WAITING : LIBVIRT_BACKING_OFF;
        watch_schedule(w, delay);
        w->fn(w->userdata, TRIGGER_NONE, NULL);
}

static const char *event_name(int event) {
        static const char *const names[] = {
                [VIR_DOMAIN_EVENT_DEFINED] = "defined",         [VIR_DOMAIN_EVENT_UNDEFINED] = "undefined",
                [VIR_DOMAIN_EVENT_STARTED] = "started",         [VIR_DOMAIN_EVENT_SUSPENDED] = "suspended",
                [VIR_DOMAIN_EVENT_RESUMED] = "resumed",         [VIR_DOMAIN_EVENT_STOPPED] = "stopped",
                [VIR_DOMAIN_EVENT_SHUTDOWN] = "shut down",      [VIR_DOMAIN_EVENT_PMSUSPENDED] = "suspended to memory",
                [VIR_DOMAIN_EVENT_CRASHED] = "crashed",
        };

        if (event < 0 || (size_t) event >= ELEMENTSOF(names) || !names[event])
                return "changed";
        return names[event];
}

/* Started (also restored, migrated in), stopped (also saved, migrated out, crashed), shut down, crashed. */
static bool event_changes_memory(int event) {
        return event == VIR_DOMAIN_EVENT_STARTED || event == VIR_DOMAIN_EVENT_STOPPED ||
               event == VIR_DOMAIN_EVENT_SHUTDOWN || event == VIR_DOMAIN_EVENT_CRASHED;
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque) {
        LibvirtWatch *w = opaque;
        const char *name = lv.virDomainGetName(dom);
        char reason[160];

        snprintf(reason, sizeof(reason), "libvirt guest %s %s", name ? name : "?", event_name(event));
        if (event_changes_memory(event))
                w->fn(w->userdata, TRIGGER_GUEST_EVENT, reason);
        else
                log_debug("%s (detail %d): no change to guest memory, no adjustment", reason, detail);
        return 0;
}

static void on_close(virConnectPtr conn, int reason, void *opaque);

static void watch_disconnect(LibvirtWatch *w) {
        if (!w->conn)
                return;
        if (w->callback_id >= 0)
                (void) lv.virConnectDomainEventDeregisterAny(w->conn, w->callback_id);
        w->callback_id = -1;
        /* libvirt matches the callback itself; NULL would leave it registered, holding the connection open
         * and calling on_close with a freed watch later. */
        (void) lv.virConnectUnregisterCloseCallback(w->conn, on_close);
        (void) lv.virConnectClose(w->conn);
        w->conn = NULL;
}

static int on_cleanup(sd_event_source *s, void *userdata) {
        LibvirtWatch *w = userdata;

        w->cleanup = sd_event_source_disable_unref(w->cleanup);
        watch_disconnect(w);
        watch_failed(w, "connection closed");
        return 0;
}

static void on_close(virConnectPtr conn, int reason, void *opaque) {
        static const char *const reasons[] = { "error", "end of file", "keepalive timeout", "client request" };
        LibvirtWatch *w = opaque;

        log_info("Lost the connection to libvirt at %s (%s); reconnecting", w->uri,
                 reason >= 0 && (size_t) reason < ELEMENTSOF(reasons) ? reasons[reason] : "unknown");
        w->outage_reported = true;
        w->state = LIBVIRT_BACKING_OFF;
        /* The connection must not be closed from inside its own close callback. */
        if (!w->cleanup && sd_event_add_defer(w->event, &w->cleanup, on_cleanup, w) < 0)
                log_warning("Out of memory: cannot schedule the libvirt reconnection");
}

static void watch_connect(LibvirtWatch *w) {
        const char *err;

        w->state = LIBVIRT_CONNECTING;
        w->conn = lv.virConnectOpenReadOnly(w->uri);
        if (!w->conn) {
                err = lv.virGetLastErrorMessage();
                watch_failed(w, err ? err : "cannot connect");
                return;
        }
        /* Keepalive: a daemon that stops answering is noticed within about 20 s. */
        (void) lv.virConnectSetKeepAlive(w->conn, 5, 3);
        if (lv.virConnectRegisterCloseCallback(w->conn, on_close, w, NULL) < 0)
                log_debug("Cannot register libvirt's close callback: %s", lv.virGetLastErrorMessage());
        w->callback_id = lv.virConnectDomainEventRegisterAny(w->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                              VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), w, NULL);
        if (w->callback_id < 0) {
                err = lv.virGetLastErrorMessage();
                watch_disconnect(w);
                watch_failed(w, err ? err : "cannot subscribe to domain events");
                return;
        }
        log_info("Connected to libvirt at %s: guests starting and stopping now trigger adjustments", w->uri);
        w->state = LIBVIRT_CONNECTED;
        w->outage_reported = false;
        backoff_reset(&w->backoff);
        if (w->ever_connected)
                w->fn(w->userdata, TRIGGER_RECONNECT, "libvirt reconnected");
        else
                w->fn(w->userdata, TRIGGER_NONE, NULL);
        w->ever_connected = true;
}

/*
 * The readiness probe. A starting libvirtd accepts on its socket long before it answers (its drivers
 * probe QEMU first, ~40 s on a fresh host), and virConnectOpen would block our loop all that time. So
 * we send one call that needs no connection (REMOTE_PROC_AUTH_LIST) ourselves, without blocking, and
 * open the real connection only once a reply proves the daemon serves.
 */
#define REMOTE_PROGRAM 0x20008086u
#define REMOTE_PROTOCOL_VERSION 1u
#define REMOTE_PROC_AUTH_LIST 66u
#define VIR_NET_CALL 0u
#define VIR_NET_REPLY 1u

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

static void probe_stop(LibvirtWatch *w) {
        w->probe = sd_event_source_disable_unref(w->probe);
        closep(&w->probe_fd);
        w->probe_fd = -1;
}

static int on_probe(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        LibvirtWatch *w = userdata;
        ssize_t n;

        n = recv(fd, w->probe_buf + w->probe_got, sizeof(w->probe_buf) - w->probe_got, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                probe_stop(w);
                watch_failed(w, n == 0 ? "the daemon closed the socket" : "cannot read from the socket");
                return 0;
        }
        w->probe_got += (size_t) n;
        if (w->probe_got < 28) /* length word and the 24-byte header */
                return 0;
        probe_stop(w);
        if (get_be32(w->probe_buf + 4) != REMOTE_PROGRAM || get_be32(w->probe_buf + 16) != VIR_NET_REPLY) {
                watch_failed(w, "unexpected answer on the socket");
                return 0;
        }
        log_debug("libvirt at %s answers after %llu ms; connecting", w->uri,
                  (unsigned long long) ((loop_now_usec() - w->probe_started) / 1000));
        watch_connect(w);
        return 0;
}

static void probe_start(LibvirtWatch *w) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char call[28];
        int r;

        w->probe_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (w->probe_fd < 0) {
                watch_failed(w, "cannot create a socket");
                return;
        }
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w->socket_path);
        if (connect(w->probe_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
                char what[160];

                snprintf(what, sizeof(what), "%s: %s", w->socket_path, strerror(errno));
                probe_stop(w);
                watch_failed(w, what);
                return;
        }
        put_be32(call, sizeof(call));
        put_be32(call + 4, REMOTE_PROGRAM);
        put_be32(call + 8, REMOTE_PROTOCOL_VERSION);
        put_be32(call + 12, REMOTE_PROC_AUTH_LIST);
        put_be32(call + 16, VIR_NET_CALL);
        put_be32(call + 20, 1); /* serial */
        put_be32(call + 24, 0); /* status OK */
        /* 28 bytes fit in any socket buffer: on a fresh connected socket this never blocks. */
        if (send(w->probe_fd, call, sizeof(call), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t) sizeof(call)) {
                probe_stop(w);
                watch_failed(w, "cannot write to the socket");
                return;
        }
        w->probe_got = 0;
        w->probe_started = loop_now_usec();
        r = sd_event_add_io(w->event, &w->probe, w->probe_fd, EPOLLIN, on_probe, w);
        if (r < 0) {
                probe_stop(w);
                watch_failed(w, "cannot watch the socket");
                return;
        }
        w->state = LIBVIRT_CONNECTING;
        /* A daemon that accepts but never answers: give up on this attempt after a while. */
        watch_schedule(w, PROBE_TIMEOUT);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        LibvirtWatch *w = userdata;

        if (w->probe) {
                probe_stop(w);
                watch_failed(w, "no answer from the daemon");
                return 0;
        }
        if (w->conn)
                return 0;
        if (w->socket_path[0] && access(w->socket_path, F_OK) < 0) {
                watch_failed(w, "no socket");
                return 0;
        }
        if (libvirt_load() < 0) {
                w->state = LIBVIRT_UNAVAILABLE;
                return 0;
        }
        if (w->socket_path[0])
                probe_start(w);
        else
                watch_connect(w);
        return 0;
}

/* The daemon (re)created its socket: try now instead of at the next back-off step. */
static int on_socket_dir(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        LibvirtWatch *w = userdata;
        const char *base = strrchr(w->socket_path, '/');

        if (ev->len == 0 || !base || !streq(ev->name, base + 1) || w->conn || w->probe || w->cleanup)
                return 0;
        log_debug("%s appeared; connecting to libvirt", w->socket_path);
        backoff_reset(&w->backoff);
        watch_schedule(w, 0);
        return 0;
}

static void watch_schedule(LibvirtWatch *w, uint64_t delay) {
        if (sd_event_source_set_time_relative(w->retry, delay) < 0 ||
            sd_event_source_set_enabled(w->retry, SD_EVENT_ONESHOT) < 0)
                log_warning("Cannot schedule the next libvirt connection attempt");
}

/**
 * libvirt_watch_new() - watch the guests of the libvirt at @uri, connecting when its daemon is there.
 * @socket_path: the socket to wait for and probe; NULL to derive it from @uri.
 *
 * Nothing is loaded or connected here: the first attempt runs from the loop. libvirt is loaded only
 * once a local daemon's socket exists (or at once for URIs without one).
 */
int libvirt_watch_new(sd_event *e, const char *uri, const char *socket_path, GuestEventFn fn, void *userdata,
                      LibvirtWatch **ret) {
        LibvirtWatch *w;
        int r;

        if (impl_event && impl_event != e)
                return -EBUSY; /* libvirt's event implementation is one per process */
        impl_event = e;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->event = e;
        w->fn = fn;
        w->userdata = userdata;
        w->probe_fd = -1;
        w->callback_id = -1;
        w->state = LIBVIRT_CONNECTING;
        backoff_init(&w->backoff, BACKOFF_MIN, BACKOFF_MAX);
        w->uri = strdup(uri);
        if (!w->uri) {
                free(w);
                return -ENOMEM;
        }
        if (socket_path)
                snprintf(w->socket_path, sizeof(w->socket_path), "%s", socket_path);
        else
                (void) libvirt_socket_for_uri(uri, w->socket_path, sizeof(w->socket_path));

        r = sd_event_add_time_relative(e, &w->retry, CLOCK_MONOTONIC, 0, 10 * 1000, on_retry, w);
        if (r < 0) {
                libvirt_watch_free(w);
                return r;
        }
        if (w->socket_path[0]) {
                char dir[sizeof(w->socket_path)];

                snprintf(dir, sizeof(dir), "%s", w->socket_path);
                *strrchr(dir, '/') = '\0';
                /* Without the directory (libvirt not installed yet) the back-off timer alone keeps looking. */
                r = sd_event_add_inotify(e, &w->inotify, dir, IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_ONLYDIR,
                                         on_socket_dir, w);
                if (r < 0)
                        log_debug("Cannot watch %s for libvirt's socket (%s); polling instead", dir, strerror(-r));
        }
        *ret = w;
        return 0;
}

/**
 * libvirt_shutdown() - at exit, after the last watch is freed: run the free callbacks libvirt is still
 * owed and drop every source of the event implementation, so the loop itself can be freed.
 */
void libvirt_shutdown(void) {
        ImplWatch *w;

        while ((w = impl_releasing)) {
                impl_releasing = w->next;
                if (w->ff)
                        w->ff(w->opaque);
                sd_event_source_disable_unref(w->source);
                free(w);
        }
        while ((w = impl_watches)) {
                impl_watches = w->next;
                sd_event_source_disable_unref(w->source);
                free(w);
        }
        impl_event = NULL;
}

LibvirtWatch *libvirt_watch_free(LibvirtWatch *w) {
        if (!w)
                return NULL;
        probe_stop(w);
        watch_disconnect(w);
        sd_event_source_disable_unref(w->retry);
        sd_event_source_disable_unref(w->cleanup);
        sd_event_source_disable_unref(w->inotify);
        free(w->uri);
        free(w);
        return NULL;
}
