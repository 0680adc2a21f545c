/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A bounded parser of kernel uevents: untrusted bytes in, "was this a KVM VM created or destroyed" out. */
#include <errno.h>
#include <string.h>

#include "uevent.h"

#define KVM_DEVPATH "/devices/virtual/misc/kvm"

/* A decimal number filling all of [p, p+n), at most 18 digits so it cannot overflow. */
static int64_t parse_num(const char *p, size_t n) {
        int64_t v = 0;

        if (n == 0 || n > 18)
                return -1;
        for (size_t i = 0; i < n; i++) {
                if (p[i] < '0' || p[i] > '9')
                        return -1;
                v = v * 10 + (p[i] - '0');
        }
        return v;
}

static bool field_is(const char *f, size_t n, const char *key, const char **ret_value, size_t *ret_len) {
        size_t k = strlen(key);

        if (n < k + 1 || memcmp(f, key, k) != 0 || f[k] != '=')
                return false;
        *ret_value = f + k + 1;
        *ret_len = n - k - 1;
        return true;
}

static bool value_is(const char *v, size_t n, const char *want) {
        return n == strlen(want) && memcmp(v, want, n) == 0;
}

/**
 * uevent_parse_kvm() - recognise KVM's "change" uevent for a VM created or destroyed.
 * @buf: one message as received from NETLINK_KOBJECT_UEVENT: "ACTION@DEVPATH", then NUL-separated
 *       KEY=VALUE fields; nothing in it is trusted: no terminating NUL, field order or field count is
 *       assumed, and nothing is read outside [@buf, @buf + @len).
 *
 * Returns 1 and fills @ret for a KVM create/destroy event; 0 for any other well-formed uevent (the
 * common case: every device on the host sends them); -EBADMSG for a message that is not a uevent.
 */
int uevent_parse_kvm(const void *buf, size_t len, KvmEvent *ret) {
        const char *p = buf, *end;
        const char *hdr_end, *at;
        const char *action = NULL, *devpath = NULL, *event = NULL;
        size_t action_len = 0, devpath_len = 0, event_len = 0;
        KvmEvent e = { .pid = -1, .count = -1 };

        if (!buf || len == 0 || len > UEVENT_MSG_MAX)
                return -EBADMSG;
        end = p + len;

        /* The header: "ACTION@DEVPATH" up to the first NUL (or the end). */
        hdr_end = memchr(p, '\0', len);
        if (!hdr_end)
                hdr_end = end;
        at = memchr(p, '@', (size_t) (hdr_end - p));
        if (!at || at == p || at + 1 == hdr_end)
                return -EBADMSG;

        for (const char *f = hdr_end < end ? hdr_end + 1 : end; f < end;) {
                const char *fe = memchr(f, '\0', (size_t) (end - f));
                const char *v;
                size_t n, vn;

                if (!fe)
                        fe = end;
                n = (size_t) (fe - f);
                if (field_is(f, n, "ACTION", &v, &vn))
                        action = v, action_len = vn;
                else if (field_is(f, n, "DEVPATH", &v, &vn))
                        devpath = v, devpath_len = vn;
                else if (field_is(f, n, "EVENT", &v, &vn))
                        event = v, event_len = vn;
                else if (field_is(f, n, "PID", &v, &vn))
                        e.pid = parse_num(v, vn);
                else if (field_is(f, n, "COUNT", &v, &vn))
                        e.count = parse_num(v, vn);
                f = fe + 1;
        }

        /* The fields decide; the header merely has to look like one. */
        if (!action || !devpath || !value_is(action, action_len, "change") ||
            !value_is(devpath, devpath_len, KVM_DEVPATH) || !event)
                return 0;
        if (value_is(event, event_len, "create"))
                e.type = KVM_EVENT_CREATE;
        else if (value_is(event, event_len, "destroy"))
                e.type = KVM_EVENT_DESTROY;
        else
                return 0;
        *ret = e;
        return 1;
}
