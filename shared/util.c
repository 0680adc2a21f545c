/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Integer parsing and whole-file reading for small kernel files. */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>

#include "util.h"

/**
 * safe_atou64() - parse a whole unsigned decimal integer; no sign, surrounding whitespace allowed.
 */
int safe_atou64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        while (isspace((unsigned char) *s))
                s++;
        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        while (isspace((unsigned char) *end))
                end++;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

/**
 * safe_atoi64() - parse a whole decimal integer, sign allowed.
 *
 * Leading and trailing whitespace (a sysfs value ends in a newline) is accepted; anything else that is
 * not part of the number is -EINVAL, a value outside int64_t is -ERANGE.
 */
int safe_atoi64(const char *s, int64_t *ret) {
        uint64_t mag;
        bool neg;
        int r;

        while (isspace((unsigned char) *s))
                s++;
        neg = *s == '-';
        if (*s == '-' || *s == '+')
                s++;
        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        r = safe_atou64(s, &mag);
        if (r < 0)
                return r;
        if (mag > (uint64_t) INT64_MAX + neg)
                return -ERANGE;
        /* -(INT64_MAX + 1) without overflowing on the way. */
        *ret = neg && mag > 0 ? -(int64_t) (mag - 1) - 1 : (int64_t) mag;
        return 0;
}

/**
 * read_full_file_at() - read a small file relative to @dirfd into a NUL-terminated buffer.
 *
 * At most @max bytes are read; a longer file is -EFBIG, so a hostile or broken file cannot make us
 * allocate without bound. /proc and sysfs files report size 0, so this reads until EOF.
 */
int read_full_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, alloc = 0;

        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();

        for (;;) {
                ssize_t n;

                if (alloc - size < 2) {
                        size_t na = alloc ? alloc * 2 : 1024;
                        char *nb;

                        if (alloc > max + 1)
                                return -EFBIG;
                        nb = realloc(buf, na);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        alloc = na;
                }
                n = read(fd, buf + size, alloc - size - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > max)
                        return -EFBIG;
        }
        if (!buf) {
                buf = strdup("");
                if (!buf)
                        return -ENOMEM;
        }
        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}
