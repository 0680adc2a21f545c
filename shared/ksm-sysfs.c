/* SPDX-License-Identifier: GPL-2.0-or-later */
/* KSM sysfs knob access relative to a directory fd, so tests and containers can point elsewhere. */
#include <fcntl.h>
#include <inttypes.h>

#include "ksm-sysfs.h"
#include "util.h"

/* A knob's value is a short line; anything longer is not a KSM knob. */
#define KNOB_MAX 4096

/**
 * ksm_open_dir() - open a directory laid out like /sys/kernel/mm/ksm for the other calls.
 */
int ksm_open_dir(const char *path, int *ret_fd) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        return 0;
}

/**
 * ksm_has() - whether this kernel has @knob (many knobs came later than KSM itself).
 */
bool ksm_has(int dirfd, const char *knob) {
        return faccessat(dirfd, knob, F_OK, 0) == 0;
}

/**
 * ksm_read_string() - the knob's content without the trailing newline.
 */
int ksm_read_string(int dirfd, const char *knob, char **ret) {
        char *s;
        size_t n;
        int r;

        r = read_full_file_at(dirfd, knob, KNOB_MAX, &s, &n);
        if (r < 0)
                return r;
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
                s[--n] = '\0';
        *ret = s;
        return 0;
}

/**
 * ksm_read_u64() - read a numeric knob; -EBADMSG when the content is not one unsigned number.
 */
int ksm_read_u64(int dirfd, const char *knob, uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        uint64_t v;
        int r;

        r = ksm_read_string(dirfd, knob, &s);
        if (r < 0)
                return r;
        if (safe_atou64(s, &v) < 0)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/**
 * ksm_write_string() - write @value and a newline to the knob.
 *
 * The kernel answers a refused value through write(): EINVAL for a bad number or for pages_to_scan while
 * the advisor owns it, EBUSY for merge_across_nodes or max_page_sharing while pages are merged. O_TRUNC matters only
 * for plain files standing in for sysfs in tests; sysfs ignores it. A missing knob is -ENOENT, never created.
 */
int ksm_write_string(int dirfd, const char *knob, const char *value) {
        _cleanup_close_ int fd = -1;
        char buf[128];
        int n;
        ssize_t w;

        n = snprintf(buf, sizeof(buf), "%s\n", value);
        if (n < 0 || (size_t) n >= sizeof(buf))
                return -EINVAL;
        fd = openat(dirfd, knob, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        w = write(fd, buf, (size_t) n);
        if (w < 0)
                return negative_errno();
        if (w != n)
                return -EIO;
        if (close(TAKE_FD(fd)) < 0)
                return negative_errno();
        return 0;
}

int ksm_write_u64(int dirfd, const char *knob, uint64_t value) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRIu64, value);
        return ksm_write_string(dirfd, knob, buf);
}

/**
 * ksm_update_u64() - write @value only where the knob holds something else.
 *
 * Returns 0 when the knob already held @value, 1 when it was written, -errno on failure. An unreadable
 * or non-numeric current value is simply overwritten.
 */
int ksm_update_u64(int dirfd, const char *knob, uint64_t value) {
        uint64_t cur;
        int r;

        if (ksm_read_u64(dirfd, knob, &cur) >= 0 && cur == value)
                return 0;
        r = ksm_write_u64(dirfd, knob, value);
        if (r < 0)
                return r;
        return 1;
}

/**
 * ksm_parse_choice() - the selected word of a sysfs choice such as "[none] scan-time".
 *
 * Returns -EBADMSG when no word is bracketed.
 */
int ksm_parse_choice(const char *text, char **ret) {
        const char *a, *b;
        char *s;

        a = strchr(text, '[');
        if (!a)
                return -EBADMSG;
        b = strchr(a + 1, ']');
        if (!b || b == a + 1)
                return -EBADMSG;
        s = strndup(a + 1, (size_t) (b - a - 1));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
