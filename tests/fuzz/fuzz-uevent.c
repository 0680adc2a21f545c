/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fuzz target: uevent_parse_kvm(), which reads untrusted netlink messages: raw bytes, no terminating NUL. */
#include <errno.h>

#include "fuzz.h"
#include "uevent.h"

/* Field by field: padding is not copied by assignment, so memcmp() would see garbage. */
static bool same(const KvmEvent *a, const KvmEvent *b) {
        return a->type == b->type && a->pid == b->pid && a->count == b->count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const KvmEvent sentinel = { .type = (KvmEventType) 77, .pid = -77, .count = -77 };
        KvmEvent a = sentinel, b = sentinel;
        uint8_t *copy;
        int r1, r2;

        /* A buffer of exactly @size bytes, so that ASan sees any read past the message's end. */
        copy = malloc(size ? size : 1);
        FUZZ_CHECK(copy);
        if (size > 0)
                memcpy(copy, data, size);

        r1 = uevent_parse_kvm(copy, size, &a);
        r2 = uevent_parse_kvm(copy, size, &b);
        FUZZ_CHECK(r1 == 1 || r1 == 0 || r1 == -EBADMSG);
        FUZZ_CHECK(r1 == r2 && same(&a, &b));
        if (r1 == 1) {
                FUZZ_CHECK(a.type == KVM_EVENT_CREATE || a.type == KVM_EVENT_DESTROY);
                FUZZ_CHECK(a.pid >= -1 && a.count >= -1);
        } else
                FUZZ_CHECK(same(&a, &sentinel));
        if (size > UEVENT_MSG_MAX)
                FUZZ_CHECK(r1 == -EBADMSG);
        free(copy);
        return 0;
}
