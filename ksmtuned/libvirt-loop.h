/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libvirt loaded at run time, and libvirt's event loop interface implemented on our sd-event loop. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <systemd/sd-event.h>

/*
 * libvirt, resolved at run time. Linking it would map ~60 libraries (TLS, Kerberos, LDAP, curl) into a
 * root daemon on every host, libvirt or not; this way only hosts that run libvirt pay for it.
 */
/*
 * libvirt, resolved at run time. Linking it would map ~60 libraries (TLS, Kerberos, LDAP, curl) into a
 * root daemon on every host, libvirt or not; this way only hosts that run libvirt pay for it.
 */
#define LIBVIRT_SYMBOLS(X)                                                                                             \
        X(virEventRegisterImpl)                                                                                        \
        X(virSetErrorFunc)                                                                                             \
        X(virGetLastErrorMessage)                                                                                      \
        X(virConnectOpenReadOnly)                                                                                      \
        X(virConnectClose)                                                                                             \
        X(virConnectSetKeepAlive)                                                                                      \
        X(virConnectRegisterCloseCallback)                                                                             \
        X(virConnectUnregisterCloseCallback)                                                                           \
        X(virConnectDomainEventRegisterAny)                                                                            \
        X(virConnectDomainEventDeregisterAny)                                                                          \
        X(virDomainGetName)

typedef struct LibvirtSymbols {
        void *dl;
        bool failed;
#define X(f) __typeof__(f) *f;
        LIBVIRT_SYMBOLS(X)
#undef X
} LibvirtSymbols;

/* Set by libvirt_load(). */
extern LibvirtSymbols lv;

int libvirt_load(void);
int libvirt_loop_attach(sd_event *e);
uint64_t libvirt_loop_now(void);
