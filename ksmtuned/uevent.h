/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parsing the kernel's uevent messages for KVM's VM create/destroy announcements. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum KvmEventType {
        KVM_EVENT_CREATE,
        KVM_EVENT_DESTROY,
} KvmEventType;

typedef struct KvmEvent {
        KvmEventType type;
        int64_t pid;   /* -1 when absent */
        int64_t count; /* VMs alive after this event; -1 when absent */
} KvmEvent;

#define UEVENT_MSG_MAX 8192

int uevent_parse_kvm(const void *buf, size_t len, KvmEvent *ret);
