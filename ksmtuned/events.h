/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Event sources that tell the manager a guest may have started or stopped. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "trigger.h"

/*
 * Called from the event loop: something changed the guests; @trigger says what kind of change (a policy
 * input and a metrics label), @reason the details, for the log only. @trigger TRIGGER_NONE (@reason
 * NULL): no guest changed, only the source's own state (e.g. libvirt connected), for STATUS=.
 */
typedef void (*GuestEventFn)(void *userdata, Trigger trigger, const char *reason);

typedef struct KvmWatch KvmWatch;

int kvm_watch_new(sd_event *e, GuestEventFn fn, void *userdata, KvmWatch **ret);
KvmWatch *kvm_watch_free(KvmWatch *w);

typedef struct LibvirtWatch LibvirtWatch;

typedef enum LibvirtState {
        LIBVIRT_WAITING,    /* the daemon's socket is not there (yet) */
        LIBVIRT_CONNECTING, /* probing the socket or opening the connection */
        LIBVIRT_CONNECTED,
        LIBVIRT_BACKING_OFF, /* an attempt failed; the next is scheduled */
        LIBVIRT_UNAVAILABLE, /* the library could not be loaded: no further attempts */
} LibvirtState;

/* What the libvirt watch has to tell, besides guest events: for the caller to log. */
typedef enum LibvirtNoteKind {
        LIBVIRT_NOTE_CONNECTED,    /* connected: guest events flow */
        LIBVIRT_NOTE_UNAVAILABLE,  /* the first failed attempt of an outage: why, and the longest back-off */
        LIBVIRT_NOTE_RETRY_FAILED, /* a further failed attempt: why, and the delay until the next */
        LIBVIRT_NOTE_LOST,         /* the connection closed: libvirt's reason */
        LIBVIRT_NOTE_IGNORED,      /* a lifecycle event that changes no guest memory: which, and its detail */
} LibvirtNoteKind;

typedef struct LibvirtNote {
        LibvirtNoteKind kind;
        const char *uri;
        const char *what;   /* why, or which event; NULL for CONNECTED */
        uint64_t next_usec; /* RETRY_FAILED: the delay until the next attempt */
        uint64_t max_usec;  /* UNAVAILABLE: the longest back-off */
        int detail;         /* IGNORED: libvirt's detail code */
} LibvirtNote;

typedef void (*LibvirtNoteFn)(void *userdata, const LibvirtNote *note);

int libvirt_watch_new(sd_event *e, const char *uri, const char *socket_path, GuestEventFn fn, LibvirtNoteFn note,
                      void *userdata, LibvirtWatch **ret);
LibvirtWatch *libvirt_watch_free(LibvirtWatch *w);
LibvirtState libvirt_watch_state(const LibvirtWatch *w);
const char *libvirt_state_to_string(LibvirtState s);
bool libvirt_loaded(void);
void libvirt_shutdown(void);
int libvirt_socket_for_uri(const char *uri, char *buf, size_t size);
