/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The libvirt bridge on sd-event, driven by libvirt's in-process test driver and by fake daemon sockets. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "events.h"

#include "unit.h"

#define MSEC UINT64_C(1000)

typedef struct Seen {
        unsigned n;
        char reasons[16][160];
        Trigger triggers[16];
        unsigned state_changes;
        unsigned notes[LIBVIRT_NOTE_IGNORED + 1]; /* by kind */
        char last_note[160];
} Seen;

static void on_event(void *userdata, Trigger trigger, const char *reason) {
        Seen *s = userdata;

        if (trigger == TRIGGER_NONE) {
                ck_assert_ptr_null(reason);
                s->state_changes++;
                return;
        }
        if (s->n < 16) {
                snprintf(s->reasons[s->n], sizeof(s->reasons[0]), "%s", reason);
                s->triggers[s->n] = trigger;
        }
        s->n++;
}

static void on_note(void *userdata, const LibvirtNote *n) {
        Seen *s = userdata;

        ck_assert_ptr_nonnull(n->uri);
        s->notes[n->kind]++;
        snprintf(s->last_note, sizeof(s->last_note), "%s", n->what ? n->what : "");
}

/* A failure bound only, in ms, below the test case's timeout: a passing test never waits for it, and a slow
 * machine (sanitizers, load) must not hit it. */
#define DEADLINE_MS 20000

static uint64_t now_ms(void) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Run the loop until @done says so, or until @ms have passed on the clock; true if done. */
static bool run_until(sd_event *e, bool (*done)(void *), void *arg, unsigned ms) {
        uint64_t end = now_ms() + ms;

        while (!done(arg)) {
                if (now_ms() > end)
                        return done(arg);
                ck_assert_int_ge(sd_event_run(e, 10 * MSEC), 0);
        }
        return true;
}

static LibvirtWatch *watch;

static bool is_connected(void *arg) {
        return libvirt_watch_state(watch) == LIBVIRT_CONNECTED;
}

static bool seen_n(void *arg) {
        const unsigned *want = arg;
        extern Seen seen;

        return seen.n >= *want;
}

Seen seen;

static const char domain_xml[] = "<domain type='test'><name>ksmtuned-unit</name><memory>8192</memory><vcpu>1</vcpu>"
                                 "<os><type>hvm</type></os></domain>";
static const char domain2_xml[] = "<domain type='test'><name>ksmtuned-unit2</name><memory>8192</memory><vcpu>1</vcpu>"
                                  "<os><type>hvm</type></os></domain>";

START_TEST(test_lifecycle_events) {
        sd_event *e = NULL;
        virConnectPtr c;
        virDomainPtr d, d2;
        unsigned want;

        memset(&seen, 0, sizeof(seen));
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(libvirt_watch_new(e, "test:///default", NULL, on_event, on_note, &seen, &watch), 0);
        ck_assert(run_until(e, is_connected, NULL, DEADLINE_MS));
        ck_assert(libvirt_loaded());
        ck_assert_uint_ge(seen.state_changes, 1);
        ck_assert_uint_eq(seen.n, 0); /* the first connection is no reason to adjust */
        ck_assert_uint_eq(seen.notes[LIBVIRT_NOTE_CONNECTED], 1);

        /* A second connection in the same process changes the test driver's domains. */
        c = virConnectOpen("test:///default");
        ck_assert_ptr_nonnull(c);
        d = virDomainCreateXML(c, domain_xml, 0);
        ck_assert_ptr_nonnull(d);
        want = 1;
        ck_assert(run_until(e, seen_n, &want, DEADLINE_MS));
        ck_assert_str_eq(seen.reasons[0], "libvirt guest ksmtuned-unit started");
        ck_assert_int_eq(seen.triggers[0], TRIGGER_GUEST_EVENT);

        /* Suspending and resuming change no memory: no event reaches the manager. */
        ck_assert_int_eq(virDomainSuspend(d), 0);
        ck_assert_int_eq(virDomainResume(d), 0);
        ck_assert_int_eq(virDomainDestroy(d), 0);
        want = 2;
        ck_assert(run_until(e, seen_n, &want, DEADLINE_MS));
        ck_assert_str_eq(seen.reasons[1], "libvirt guest ksmtuned-unit stopped");
        ck_assert_int_eq(seen.triggers[1], TRIGGER_GUEST_EVENT);
        /* Suspended and resumed: told, for the log, not as guest events. */
        ck_assert_uint_eq(seen.notes[LIBVIRT_NOTE_IGNORED], 2);
        /* Nothing more from that domain: the next event is the next domain's start (events keep their order). */
        d2 = virDomainCreateXML(c, domain2_xml, 0);
        ck_assert_ptr_nonnull(d2);
        want = 3;
        ck_assert(run_until(e, seen_n, &want, DEADLINE_MS));
        ck_assert_str_eq(seen.reasons[2], "libvirt guest ksmtuned-unit2 started");
        ck_assert_int_eq(seen.triggers[2], TRIGGER_GUEST_EVENT);
        ck_assert_int_eq(virDomainDestroy(d2), 0);
        want = 4;
        ck_assert(run_until(e, seen_n, &want, DEADLINE_MS));
        ck_assert_str_eq(seen.reasons[3], "libvirt guest ksmtuned-unit2 stopped");

        virDomainFree(d2);
        virDomainFree(d);
        virConnectClose(c);
        watch = libvirt_watch_free(watch);
        libvirt_shutdown();
        sd_event_unref(e);
}
END_TEST

static const struct {
        const char *uri;
        int r;
} uri_cases[] = {
        { "qemu:///system", 1 },
        { "qemu+unix:///system", 1 },
        { "lxc:///system", 1 },
        { "qemu:///system?mode=legacy", 1 },
        { "qemu:///session", 0 },
        { "qemu+ssh://host/system", 0 },
        { "qemu+tcp://host/system", 0 },
        { "qemu+ssh:///system", 0 },
        { "qemu:///system?socket=/tmp/x", 0 },
        { "test:///default", 0 },
        { "", 0 },
        { ":///system", 0 },
};

START_TEST(test_socket_for_uri) {
        char buf[128] = "";
        int r = libvirt_socket_for_uri(uri_cases[_i].uri, buf, sizeof(buf));

        ck_assert_msg(r == uri_cases[_i].r, "%s: %d", uri_cases[_i].uri, r);
        if (r == 1)
                ck_assert_msg(strncmp(buf, "/run/libvirt/", 13) == 0 && strstr(buf, "-sock-ro"), "%s", buf);
}
END_TEST

static char dir[] = "/tmp/ksmtuned-test-libvirt-XXXXXX";
static char sock_path[100];

static int listen_at(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        ck_assert_int_ge(fd, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(fd, 4), 0);
        return fd;
}

static bool state_is(void *arg) {
        return libvirt_watch_state(watch) == *(LibvirtState *) arg;
}

static int ticks;
static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        ticks++;
        return sd_event_source_set_time_relative(s, 10 * MSEC);
}

static bool ticked_10(void *arg) {
        return ticks >= 10;
}

/* A daemon socket that accepts but never answers (a libvirtd still starting): the loop goes on. */
START_TEST(test_probe_waits_without_blocking) {
        sd_event *e = NULL;
        sd_event_source *tick = NULL;
        LibvirtState connecting = LIBVIRT_CONNECTING, waiting = LIBVIRT_WAITING;
        int lfd;

        memset(&seen, 0, sizeof(seen));
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(sock_path, sizeof(sock_path), "%s/libvirt-sock-ro", dir);
        ck_assert_int_ge(sd_event_new(&e), 0);

        /* No socket: waiting, and nothing loaded for it. */
        ck_assert_int_eq(libvirt_watch_new(e, "qemu:///system", sock_path, on_event, on_note, &seen, &watch), 0);
        ck_assert(run_until(e, state_is, &waiting, DEADLINE_MS));

        /* The socket appears (inotify), accepts, never answers: connecting, and timers still run. */
        lfd = listen_at(sock_path);
        ck_assert_int_ge(sd_event_add_time_relative(e, &tick, CLOCK_MONOTONIC, 10 * MSEC, 0, on_tick, NULL), 0);
        ck_assert_int_ge(sd_event_source_set_enabled(tick, SD_EVENT_ON), 0);
        ck_assert(run_until(e, state_is, &connecting, DEADLINE_MS));
        ticks = 0;
        ck_assert(run_until(e, ticked_10, NULL, DEADLINE_MS));
        ck_assert(state_is(&connecting));
        ck_assert_uint_eq(seen.n, 0);

        /* The daemon goes away: back to waiting for it, no crash. */
        close(lfd);
        unlink(sock_path);
        ck_assert(run_until(e, state_is, &waiting, DEADLINE_MS));

        sd_event_source_disable_unref(tick);
        watch = libvirt_watch_free(watch);
        libvirt_shutdown();
        sd_event_unref(e);
        rmdir(dir);
        strcpy(dir, "/tmp/ksmtuned-test-libvirt-XXXXXX");
}
END_TEST

/* A socket whose owner answers garbage: not libvirt; back off and try again later. */
START_TEST(test_probe_rejects_garbage) {
        sd_event *e = NULL;
        LibvirtState backing_off = LIBVIRT_BACKING_OFF;
        int lfd, cfd;
        char junk[64];

        memset(&seen, 0, sizeof(seen));
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(sock_path, sizeof(sock_path), "%s/libvirt-sock-ro", dir);
        lfd = listen_at(sock_path);
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(libvirt_watch_new(e, "qemu:///system", sock_path, on_event, on_note, &seen, &watch), 0);
        cfd = -1;
        for (uint64_t end = now_ms() + DEADLINE_MS; cfd < 0 && now_ms() <= end;) {
                sd_event_run(e, 20 * MSEC);
                cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        }
        ck_assert_int_ge(cfd, 0);
        ck_assert(poll(&(struct pollfd) { .fd = cfd, .events = POLLIN }, 1, DEADLINE_MS) == 1);
        ck_assert_int_eq(read(cfd, junk, sizeof(junk)), 28); /* the probe: one 28-byte call */
        memset(junk, 0x5a, sizeof(junk));
        ck_assert_int_eq(write(cfd, junk, sizeof(junk)), (ssize_t) sizeof(junk));
        ck_assert(run_until(e, state_is, &backing_off, DEADLINE_MS));
        ck_assert_uint_eq(seen.notes[LIBVIRT_NOTE_UNAVAILABLE], 1);
        ck_assert_str_eq(seen.last_note, "unexpected answer on the socket");
        close(cfd);
        close(lfd);
        watch = libvirt_watch_free(watch);
        libvirt_shutdown();
        sd_event_unref(e);
        unlink(sock_path);
        rmdir(dir);
        strcpy(dir, "/tmp/ksmtuned-test-libvirt-XXXXXX");
}
END_TEST

int main(void) {
        Suite *s = suite_create("libvirt events");
        TCase *tc = tcase_create("bridge");

        tcase_set_timeout(tc, 30);
        tcase_add_loop_test(tc, test_socket_for_uri, 0, sizeof(uri_cases) / sizeof(uri_cases[0]));
        tcase_add_test(tc, test_lifecycle_events);
        tcase_add_test(tc, test_probe_waits_without_blocking);
        tcase_add_test(tc, test_probe_rejects_garbage);
        suite_add_tcase(s, tc);
        return unit_run(s);
}
