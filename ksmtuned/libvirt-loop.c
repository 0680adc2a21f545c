/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libvirt loaded when it is in use, and its event loop interface implemented with sd-event sources. */
#include <dlfcn.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "events.h"
#include "libvirt-loop.h"
#include "log.h"

static void silence_libvirt(void *userdata, virErrorPtr error) {
        /* libvirt prints every error to stderr by default; we report what matters ourselves. */
}

/* The event implementation below, registered with libvirt once per process. */
static sd_event *impl_event;
static void impl_register(void);

LibvirtSymbols lv;

/**
 * libvirt_load() - dlopen() libvirt.so.0, resolve LIBVIRT_SYMBOLS into lv and register the sd-event
 * implementation below with it. Once: a failure (logged) is final for the process.
 *
 * Return: 0, or -ENOENT when the library or one of its symbols is missing.
 */
int libvirt_load(void) {
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
#define X(f)                                                                                                           \
        lv.f = (__typeof__(f) *) dlsym(lv.dl, #f);                                                                     \
        if (!lv.f) {                                                                                                   \
                log_warning("libvirt.so.0 lacks %s: libvirt's guest events are not watched", #f);                      \
                dlclose(lv.dl);                                                                                        \
                lv.dl = NULL;                                                                                          \
                lv.failed = true;                                                                                      \
                return -ENOENT;                                                                                        \
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
        return (events & VIR_EVENT_HANDLE_READABLE ? EPOLLIN : 0) | (events & VIR_EVENT_HANDLE_WRITABLE ? EPOLLOUT : 0);
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
uint64_t libvirt_loop_now(void) {
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
        (void) sd_event_source_set_time(w->source, libvirt_loop_now() + (uint64_t) w->frequency * 1000);
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

/* Attach the event implementation to @e: one loop per process. Returns 0 or -EBUSY. */
int libvirt_loop_attach(sd_event *e) {
        if (impl_event && impl_event != e)
                return -EBUSY;
        impl_event = e;
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
