/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The connection to libvirt, its state machine, and its domain lifecycle events as guest events. */
#include <sys/stat.h>
#include <sys/inotify.h>
#include <time.h>

#include <libvirt/libvirt.h>

#include "events.h"
#include "libvirt-loop.h"
#include "libvirt-probe.h"
#include "log.h"
#include "schedule.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define BACKOFF_MIN  (1 * USEC_PER_SEC)
#define BACKOFF_MAX  (30 * USEC_PER_SEC)
/* libvirtd answers nothing until its drivers are up: ~40 s on a first start here; wait longer than that. */
#define PROBE_TIMEOUT (180 * USEC_PER_SEC)

/* ---- the connection ---- */

struct LibvirtWatch {
        sd_event *event;
        char *uri;
        char socket_path[108]; /* empty: no local socket to wait for (remote or in-process URIs) */
        GuestEventFn fn;
        LibvirtNoteFn note; /* NULL: nothing to tell */
        void *userdata;

        LibvirtState state;
        Backoff backoff;
        sd_event_source *retry;   /* the next attempt */
        sd_event_source *cleanup; /* a closed connection, released outside libvirt's callback */
        sd_event_source *inotify; /* the socket's directory, to try at once when the socket appears */
        LibvirtProbe probe;

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

static void watch_note(LibvirtWatch *w, LibvirtNote note) {
        note.uri = w->uri;
        if (w->note)
                w->note(w->userdata, &note);
}

static void watch_failed(LibvirtWatch *w, const char *what) {
        uint64_t delay = backoff_fail(&w->backoff);

        if (!w->outage_reported) {
                watch_note(w,
                           (LibvirtNote) { .kind = LIBVIRT_NOTE_UNAVAILABLE, .what = what, .max_usec = BACKOFF_MAX });
                w->outage_reported = true;
        } else
                watch_note(w, (LibvirtNote) { .kind = LIBVIRT_NOTE_RETRY_FAILED, .what = what, .next_usec = delay });
        w->state = w->socket_path[0] && access(w->socket_path, F_OK) < 0 ? LIBVIRT_WAITING : LIBVIRT_BACKING_OFF;
        watch_schedule(w, delay);
        w->fn(w->userdata, TRIGGER_NONE, NULL);
}

static const char *event_name(int event) {
        static const char *const names[] = {
                [VIR_DOMAIN_EVENT_DEFINED] = "defined",    [VIR_DOMAIN_EVENT_UNDEFINED] = "undefined",
                [VIR_DOMAIN_EVENT_STARTED] = "started",    [VIR_DOMAIN_EVENT_SUSPENDED] = "suspended",
                [VIR_DOMAIN_EVENT_RESUMED] = "resumed",    [VIR_DOMAIN_EVENT_STOPPED] = "stopped",
                [VIR_DOMAIN_EVENT_SHUTDOWN] = "shut down", [VIR_DOMAIN_EVENT_PMSUSPENDED] = "suspended to memory",
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
                watch_note(w, (LibvirtNote) { .kind = LIBVIRT_NOTE_IGNORED, .what = reason, .detail = detail });
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

        watch_note(w, (LibvirtNote) { .kind = LIBVIRT_NOTE_LOST,
                                      .what = reason >= 0 && (size_t) reason < ELEMENTSOF(reasons) ? reasons[reason]
                                                                                                   : "unknown" });
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
        watch_note(w, (LibvirtNote) { .kind = LIBVIRT_NOTE_CONNECTED });
        w->state = LIBVIRT_CONNECTED;
        w->outage_reported = false;
        backoff_reset(&w->backoff);
        if (w->ever_connected)
                w->fn(w->userdata, TRIGGER_RECONNECT, "libvirt reconnected");
        else
                w->fn(w->userdata, TRIGGER_NONE, NULL);
        w->ever_connected = true;
}

/* The probe's verdict: connect when the daemon answers, else back off. */
static void on_probe_done(void *userdata, const char *failure) {
        LibvirtWatch *w = userdata;

        if (failure) {
                watch_failed(w, failure);
                return;
        }
        log_debug("libvirt at %s answers after %llu ms; connecting", w->uri,
                  (unsigned long long) ((libvirt_loop_now() - w->probe.started) / 1000));
        watch_connect(w);
}

static void probe_start(LibvirtWatch *w) {
        const char *failure = libvirt_probe_start(&w->probe, w->event, w->socket_path, on_probe_done, w);

        if (failure) {
                watch_failed(w, failure);
                return;
        }
        w->state = LIBVIRT_CONNECTING;
        /* A daemon that accepts but never answers: give up on this attempt after a while. */
        watch_schedule(w, PROBE_TIMEOUT);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        LibvirtWatch *w = userdata;

        if (libvirt_probe_running(&w->probe)) {
                libvirt_probe_stop(&w->probe);
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

        if (ev->len == 0 || !base || !streq(ev->name, base + 1) || w->conn || libvirt_probe_running(&w->probe) ||
            w->cleanup)
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
 * @fn: told of guest events and of every change of state (for STATUS=).
 * @note: told what to log (connected, unavailable, lost, events ignored); NULL: nothing.
 *
 * Nothing is loaded or connected here: the first attempt runs from the loop. libvirt is loaded only
 * once a local daemon's socket exists (or at once for URIs without one).
 */
int libvirt_watch_new(sd_event *e, const char *uri, const char *socket_path, GuestEventFn fn, LibvirtNoteFn note,
                      void *userdata, LibvirtWatch **ret) {
        LibvirtWatch *w;
        int r;

        r = libvirt_loop_attach(e); /* libvirt's event implementation is one per process */
        if (r < 0)
                return r;

        w = malloc(sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (LibvirtWatch) {
                .event = e, .fn = fn, .note = note, .userdata = userdata, .callback_id = -1, .state = LIBVIRT_CONNECTING
        };
        libvirt_probe_init(&w->probe);
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

LibvirtWatch *libvirt_watch_free(LibvirtWatch *w) {
        if (!w)
                return NULL;
        libvirt_probe_stop(&w->probe);
        watch_disconnect(w);
        sd_event_source_disable_unref(w->retry);
        sd_event_source_disable_unref(w->cleanup);
        sd_event_source_disable_unref(w->inotify);
        free(w->uri);
        free(w);
        return NULL;
}
