/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Event timing (coalescing, back-off) on a fake clock, and the uevent parser on captured and broken input. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"
#include "uevent.h"

#include "unit.h"

#define SEC UINT64_C(1000000)

START_TEST(test_pending_coalesces) {
        Pending p = {};
        char why[128];

        /* The first event arms the timer 2 s later... */
        ck_assert(pending_add(&p, 100 * SEC, 2 * SEC, TRIGGER_RECONNECT, "libvirt reconnected"));
        ck_assert_uint_eq(p.due, 102 * SEC);
        pending_reason(&p, why, sizeof(why));
        ck_assert_str_eq(why, "libvirt reconnected");
        ck_assert_int_eq(p.trigger, TRIGGER_RECONNECT);

        /* ...and the following ones join it without moving it: a stream of events cannot delay it. */
        for (uint64_t t = 100 * SEC; t < 102 * SEC; t += SEC / 10)
                ck_assert(!pending_add(&p, t, 2 * SEC, TRIGGER_GUEST_EVENT, "KVM VM of PID 7 created"));
        ck_assert_uint_eq(p.due, 102 * SEC);
        pending_reason(&p, why, sizeof(why));
        ck_assert_str_eq(why, "libvirt reconnected (+20 more)");
        ck_assert_int_eq(p.trigger, TRIGGER_RECONNECT); /* the first event's, as the log line says */

        /* After the adjustment, the next event starts a new round. */
        pending_clear(&p);
        ck_assert(pending_add(&p, 103 * SEC, 2 * SEC, TRIGGER_GUEST_EVENT, "KVM VM of PID 8 destroyed"));
        ck_assert_uint_eq(p.due, 105 * SEC);
        pending_reason(&p, why, sizeof(why));
        ck_assert_str_eq(why, "KVM VM of PID 8 destroyed");
        ck_assert_int_eq(p.trigger, TRIGGER_GUEST_EVENT);
}
END_TEST

START_TEST(test_pending_edges) {
        Pending p = {};
        char longer[300], why[256];

        /* No settle delay: due at once. Near the end of the clock: saturates, no wrap-around. */
        ck_assert(pending_add(&p, 5, 0, TRIGGER_GUEST_EVENT, "x"));
        ck_assert_uint_eq(p.due, 5);
        pending_clear(&p);
        ck_assert(pending_add(&p, UINT64_MAX - 1, 2 * SEC, TRIGGER_GUEST_EVENT, "x"));
        ck_assert_uint_eq(p.due, UINT64_MAX);

        /* A long reason is cut to fit, never overflows. */
        pending_clear(&p);
        memset(longer, 'a', sizeof(longer) - 1);
        longer[sizeof(longer) - 1] = '\0';
        ck_assert(pending_add(&p, 0, SEC, TRIGGER_GUEST_EVENT, longer));
        pending_reason(&p, why, sizeof(why));
        ck_assert_uint_eq(strlen(why), sizeof(p.first) - 1);
}
END_TEST

START_TEST(test_backoff) {
        Backoff b;
        static const uint64_t want[] = { 1, 2, 4, 8, 16, 30, 30, 30 };

        backoff_init(&b, 1 * SEC, 30 * SEC);
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                ck_assert_uint_eq(backoff_fail(&b), want[i] * SEC);
        ck_assert_uint_eq(b.failures, 8);
        backoff_reset(&b);
        ck_assert_uint_eq(b.failures, 0);
        ck_assert_uint_eq(backoff_fail(&b), 1 * SEC);
        ck_assert_uint_eq(backoff_fail(&b), 2 * SEC);

        /* A maximum below the minimum is the minimum; a huge maximum does not overflow. */
        backoff_init(&b, 5 * SEC, 1 * SEC);
        ck_assert_uint_eq(backoff_fail(&b), 5 * SEC);
        ck_assert_uint_eq(backoff_fail(&b), 5 * SEC);
        backoff_init(&b, UINT64_MAX / 2 + 1, UINT64_MAX);
        ck_assert_uint_eq(backoff_fail(&b), UINT64_MAX / 2 + 1);
        ck_assert_uint_eq(backoff_fail(&b), UINT64_MAX);
}
END_TEST

static size_t load(const char *name, char *buf, size_t size) {
        _cleanup_free_ char *data = NULL;
        size_t n;

        data = unit_fixture("uevent", name, &n);
        ck_assert_uint_le(n, size);
        memcpy(buf, data, n);
        return n;
}

START_TEST(test_uevent_captured) {
        char buf[UEVENT_MSG_MAX];
        KvmEvent e;
        size_t n;

        /* Captured from this kernel while a qemu-system-x86_64 -enable-kvm started and stopped. */
        n = load("kvm-create.bin", buf, sizeof(buf));
        ck_assert_int_eq(uevent_parse_kvm(buf, n, &e), 1);
        ck_assert_int_eq(e.type, KVM_EVENT_CREATE);
        ck_assert_int_eq(e.pid, 25384);
        ck_assert_int_eq(e.count, 1);

        n = load("kvm-destroy.bin", buf, sizeof(buf));
        ck_assert_int_eq(uevent_parse_kvm(buf, n, &e), 1);
        ck_assert_int_eq(e.type, KVM_EVENT_DESTROY);
        ck_assert_int_eq(e.pid, 25384);
        ck_assert_int_eq(e.count, 0);
}
END_TEST

/* Every prefix of a real message: no read past the length (ASan watches), and a verdict that fits. */
START_TEST(test_uevent_truncated) {
        char buf[UEVENT_MSG_MAX];
        size_t n = load("kvm-create.bin", buf, sizeof(buf));
        const char *event = memmem(buf, n, "EVENT=create", 12);

        ck_assert_ptr_nonnull(event);
        for (size_t len = 0; len <= n; len++) {
                char *copy = malloc(len ? len : 1); /* exactly len bytes, so ASan sees any overread */
                KvmEvent e;
                int r;

                memcpy(copy, buf, len);
                r = uevent_parse_kvm(copy, len, &e);
                if (len < strlen("change@/devices/virtual/misc/kvm"))
                        ck_assert_msg(r == -EBADMSG || r == 0, "len %zu: %d", len, r);
                else if ((size_t) (event - buf) + 12 <= len)
                        ck_assert_msg(r == 1, "len %zu: %d", len, r);
                else
                        ck_assert_msg(r == 0, "len %zu: %d", len, r);
                free(copy);
        }
}
END_TEST

static const struct {
        const char *what;
        const char *msg;
        size_t len;
        int r;
        int64_t pid, count;
} uevent_cases[] = {
#define M(s) s, sizeof(s) - 1
        { "another device",
          M("add@/devices/virtual/net/tap0\0ACTION=add\0DEVPATH=/devices/virtual/net/tap0\0"
            "SUBSYSTEM=net\0INTERFACE=tap0\0SEQNUM=9\0"),
          0, 0, 0 },
        { "kvm, but no EVENT",
          M("change@/devices/virtual/misc/kvm\0ACTION=change\0DEVPATH=/devices/virtual/misc/kvm\0"), 0, 0, 0 },
        { "unknown EVENT",
          M("change@/devices/virtual/misc/kvm\0ACTION=change\0DEVPATH=/devices/virtual/misc/kvm\0EVENT=reboot\0"), 0, 0,
          0 },
        { "EVENT as a prefix only",
          M("change@/devices/virtual/misc/kvm\0ACTION=change\0DEVPATH=/devices/virtual/misc/kvm\0EVENT=created\0"), 0,
          0, 0 },
        { "another DEVPATH",
          M("change@/devices/virtual/misc/kvmx\0ACTION=change\0DEVPATH=/devices/virtual/misc/kvmx\0EVENT=create\0"), 0,
          0, 0 },
        { "ACTION add",
          M("add@/devices/virtual/misc/kvm\0ACTION=add\0DEVPATH=/devices/virtual/misc/kvm\0EVENT=create\0"), 0, 0, 0 },
        { "fields in any order, no NUL at the end",
          M("change@/devices/virtual/misc/kvm\0PID=12\0EVENT=destroy\0COUNT=3\0DEVPATH=/devices/virtual/misc/"
            "kvm\0ACTION=change"),
          1, 12, 3 },
        { "no PID or COUNT",
          M("change@/devices/virtual/misc/kvm\0ACTION=change\0DEVPATH=/devices/virtual/misc/kvm\0EVENT=create\0"), 1,
          -1, -1 },
        { "PID not a number",
          M("change@/devices/virtual/misc/kvm\0ACTION=change\0DEVPATH=/devices/virtual/misc/"
            "kvm\0EVENT=create\0PID=12a\0COUNT=\0"),
          1, -1, -1 },
        { "PID too long",
          M("change@/devices/virtual/misc/kvm\0ACTION=change\0DEVPATH=/devices/virtual/misc/"
            "kvm\0EVENT=create\0PID=99999999999999999999\0"),
          1, -1, -1 },
        { "the later duplicate wins",
          M("change@/devices/virtual/misc/kvm\0ACTION=change\0DEVPATH=/devices/virtual/misc/"
            "kvm\0EVENT=create\0PID=1\0PID=2\0"),
          1, 2, -1 },
        { "empty fields between",
          M("change@/devices/virtual/misc/kvm\0\0\0ACTION=change\0\0DEVPATH=/devices/virtual/misc/kvm\0EVENT=create\0"),
          1, -1, -1 },
        { "no header", M("ACTION=change\0DEVPATH=/devices/virtual/misc/kvm\0EVENT=create\0"), -EBADMSG, 0, 0 },
        { "empty action in header", M("@/devices/virtual/misc/kvm\0ACTION=change\0"), -EBADMSG, 0, 0 },
        { "empty devpath in header", M("change@\0ACTION=change\0"), -EBADMSG, 0, 0 },
        { "libudev's format", M("libudev\0\xfe\xed\xca\xfe"), -EBADMSG, 0, 0 },
        { "empty", "", 0, -EBADMSG, 0, 0 },
        { "only NULs", M("\0\0\0\0"), -EBADMSG, 0, 0 },
#undef M
};

START_TEST(test_uevent_cases) {
        KvmEvent e = { .pid = 777, .count = 777 };
        int r = uevent_parse_kvm(uevent_cases[_i].msg, uevent_cases[_i].len, &e);

        ck_assert_msg(r == uevent_cases[_i].r, "%s: %d", uevent_cases[_i].what, r);
        if (r == 1) {
                ck_assert_int_eq(e.pid, uevent_cases[_i].pid);
                ck_assert_int_eq(e.count, uevent_cases[_i].count);
        } else
                ck_assert_int_eq(e.pid, 777); /* untouched */
}
END_TEST

START_TEST(test_uevent_oversized) {
        static char big[UEVENT_MSG_MAX + 1];
        KvmEvent e;

        memcpy(big, "change@/devices/virtual/misc/kvm", 32);
        ck_assert_int_eq(uevent_parse_kvm(big, sizeof(big), &e), -EBADMSG);
        ck_assert_int_eq(uevent_parse_kvm(NULL, 10, &e), -EBADMSG);
}
END_TEST

int main(void) {
        Suite *s = suite_create("events");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_pending_coalesces);
        tcase_add_test(tc, test_pending_edges);
        tcase_add_test(tc, test_backoff);
        tcase_add_test(tc, test_uevent_captured);
        tcase_add_test(tc, test_uevent_truncated);
        tcase_add_loop_test(tc, test_uevent_cases, 0, sizeof(uevent_cases) / sizeof(uevent_cases[0]));
        tcase_add_test(tc, test_uevent_oversized);
        suite_add_tcase(s, tc);
        return unit_run(s);
}
