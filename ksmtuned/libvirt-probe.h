/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The readiness probe. A starting libvirtd accepts on its socket long before it answers (its drivers
 * probe QEMU first, ~40 s on a fresh host), and virConnectOpen would block our loop all that time. So
 * we send one call that needs no connection (REMOTE_PROC_AUTH_LIST) ourselves, without blocking, and
 * open the real connection only once a reply proves the daemon serves.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

/* @failure NULL: the daemon answered; else why the probe failed. */
typedef void (*LibvirtProbeFn)(void *userdata, const char *failure);

typedef struct LibvirtProbe {
        sd_event_source *source; /* io on the socket, while running */
        int fd;
        size_t got;
        char buf[32];
        uint64_t started; /* CLOCK_MONOTONIC µs */
        char what[160];
        LibvirtProbeFn done;
        void *userdata;
} LibvirtProbe;

void libvirt_probe_init(LibvirtProbe *p);
const char *libvirt_probe_start(LibvirtProbe *p, sd_event *e, const char *socket_path, LibvirtProbeFn done,
                                void *userdata);
bool libvirt_probe_running(const LibvirtProbe *p);
void libvirt_probe_stop(LibvirtProbe *p);
