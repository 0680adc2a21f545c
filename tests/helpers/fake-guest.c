/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A stand-in for a guest process: holds RSS_MIB MiB of touched memory until SIGTERM or SIGINT. */

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig) {
        stop = 1;
}

static int usage(const char *argv0) {
        fprintf(stderr,
                "Usage: %s RSS_MIB [--mergeable] [--fill random|same|sharedPCT] [--kvm|--kvm-first] [--steady]\n"
                "       [--fork] [ignored args...]\n"
                "  --fill random     every page different (default): nothing to merge\n"
                "  --fill same       every page identical\n"
                "  --fill sharedPCT  the first PCT %% of the pages (rounded down) hold content that depends only\n"
                "                    on the page's index, the same in every process started so; the rest are\n"
                "                    unique to this process (e.g. shared90)\n"
                "  --kvm             create a KVM VM (KVM_CREATE_VM) and keep it: the kernel announces it;\n"
                "                    created once the memory is filled\n"
                "  --kvm-first       the same, but the VM is created before the memory is mapped and filled,\n"
                "                    as a VMM does: the kernel announces it before the memory exists\n"
                "  --steady          before saying ready, make every page mapped so far resident and keep it\n"
                "                    so (mlockall MCL_CURRENT): the RSS read after 'ready' stays put\n"
                "  --fork            then fork once (\"child PID\" precedes \"ready\"): parent and child share\n"
                "                    every page of the memory, copy-on-write, so each one's PSS of it is half\n"
                "                    its RSS; the child is steady too with --steady, and ends with the parent\n",
                argv0);
        return 2;
}

enum Fill { FILL_RANDOM, FILL_SAME, FILL_SHARED };

/* One page of pseudo-random words from seed: xorshift64, never all zero. */
static void fill_page(uint8_t *p, size_t page, uint64_t seed) {
        uint64_t x = seed ? seed : 0x9e3779b97f4a7c15ULL;

        for (size_t i = 0; i < page; i += sizeof(x)) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(p + i, &x, sizeof(x));
        }
}

/* splitmix64: spreads (stream, index) over the whole seed space. */
static uint64_t mix(uint64_t z) {
        z += 0x9e3779b97f4a7c15ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* Every page gets a different first word with 'random', so KSM finds nothing to merge. With 'shared',
 * pages below the cut are a function of their index alone (the same across processes, different from
 * each other, so nothing merges within one process), the others of the PID and the index. */
static void fill(uint8_t *mem, size_t size, size_t page, enum Fill how, unsigned pct) {
        uint64_t x = 0x9e3779b97f4a7c15ULL ^ (uint64_t) getpid();
        size_t pages = size / page, cut = pages * pct / 100;

        for (size_t n = 0; n < pages; n++) {
                uint8_t *p = mem + n * page;

                switch (how) {
                case FILL_SAME:
                        memset(p, 0x5a, page);
                        break;
                case FILL_SHARED:
                        if (n < cut)
                                fill_page(p, page, mix(0x5348415245440000ULL + n));
                        else
                                fill_page(p, page, mix(((uint64_t) getpid() << 40) ^ (0xa5ULL << 32) ^ n));
                        break;
                case FILL_RANDOM:
                        for (size_t i = 0; i < page; i += sizeof(x)) {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                memcpy(p + i, &x, sizeof(x));
                        }
                        break;
                }
        }
}

/*
 * Create a KVM VM and keep it. It holds no memory of ours; it exists so that the kernel sends its create and
 * destroy uevents (the destroy one when the process exits and the descriptors close).
 * Return: 0 with both descriptors set, or -errno (after a message on stderr).
 */
static int create_vm(int *ret_kvm_fd, int *ret_vm_fd) {
        int kvm_fd, vm_fd, r;

        kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kvm_fd < 0) {
                r = -errno;
                perror("/dev/kvm");
                return r;
        }
        do
                vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
        while (vm_fd < 0 && errno == EINTR);
        if (vm_fd < 0) {
                r = -errno;
                perror("ioctl(KVM_CREATE_VM)");
                close(kvm_fd);
                return r;
        }
        *ret_kvm_fd = kvm_fd;
        *ret_vm_fd = vm_fd;
        return 0;
}

/*
 * Fork a process that holds the same pages as this one, copy-on-write, until this one ends; the child never
 * returns. @mem is made read-only first: mlockall() faults a writable private mapping in for writing, which
 * would give the child (and this process) copies of every page. Return: the child's PID, or -1.
 */
static pid_t fork_sharer(void *mem, size_t size, bool steady, const sigset_t *old) {
        pid_t parent = getpid(), child;
        int fds[2];
        char c = 0;

        if (mem && mprotect(mem, size, PROT_READ) < 0) {
                perror("mprotect");
                return -1;
        }
        if (pipe2(fds, O_CLOEXEC) < 0) {
                perror("pipe2");
                return -1;
        }
        fflush(stdout);
        child = fork();
        if (child < 0) {
                perror("fork");
                return -1;
        }
        if (child == 0) {
                close(fds[0]);
                if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0 || getppid() != parent)
                        _exit(1);
                /* Memory locks are not inherited: the child locks its own, then says it is settled. */
                if (steady && mlockall(MCL_CURRENT) < 0) {
                        perror("mlockall (child)");
                        _exit(1);
                }
                if (write(fds[1], &c, 1) != 1)
                        _exit(1);
                close(fds[1]);
                while (!stop)
                        sigsuspend(old);
                _exit(0);
        }
        close(fds[1]);
        if (read(fds[0], &c, 1) != 1) {
                fprintf(stderr, "the child did not start\n");
                close(fds[0]);
                kill(child, SIGKILL);
                waitpid(child, NULL, 0);
                return -1;
        }
        close(fds[0]);
        return child;
}

int main(int argc, char *argv[]) {
        bool mergeable = false, kvm = false, kvm_first = false, steady = false, fork_child = false;
        enum Fill how = FILL_RANDOM;
        unsigned pct = 0;
        const char *comm;
        char *end;
        sigset_t mask, old;
        unsigned long mib;
        size_t page, size;
        void *mem = NULL;
        int kvm_fd = -1, vm_fd = -1;
        pid_t child = -1;

        if (argc < 2)
                return usage(argv[0]);
        mib = strtoul(argv[1], &end, 10);
        if (*argv[1] == '\0' || *end != '\0')
                return usage(argv[0]);

        /* Anything we do not know is a decoy argument such as -enable-kvm. */
        for (int i = 2; i < argc; i++) {
                if (strcmp(argv[i], "--mergeable") == 0)
                        mergeable = true;
                else if (strcmp(argv[i], "--kvm") == 0)
                        kvm = true;
                else if (strcmp(argv[i], "--kvm-first") == 0)
                        kvm_first = true;
                else if (strcmp(argv[i], "--steady") == 0)
                        steady = true;
                else if (strcmp(argv[i], "--fork") == 0)
                        fork_child = true;
                else if (strcmp(argv[i], "--fill") == 0 && i + 1 < argc) {
                        i++;
                        if (strcmp(argv[i], "same") == 0)
                                how = FILL_SAME;
                        else if (strcmp(argv[i], "random") == 0)
                                how = FILL_RANDOM;
                        else if (strncmp(argv[i], "shared", 6) == 0) {
                                unsigned long v = strtoul(argv[i] + 6, &end, 10);

                                if (argv[i][6] == '\0' || *end != '\0' || v > 100)
                                        return usage(argv[0]);
                                how = FILL_SHARED;
                                pct = (unsigned) v;
                        } else
                                return usage(argv[0]);
                }
        }

        comm = getenv("FAKE_GUEST_COMM");
        if (comm && prctl(PR_SET_NAME, comm, 0, 0, 0) < 0) {
                perror("prctl(PR_SET_NAME)");
                return 1;
        }

        /* Block the stop signals until pause() so that one sent right after "ready" is not lost. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, &old);
        signal(SIGTERM, on_stop);
        signal(SIGINT, on_stop);

        /* --kvm-first: the VM exists before its memory, as with a VMM, which creates the VM and then maps and
         * fills the guest's memory; the kernel's create uevent comes before there is anything to merge. */
        if (kvm_first && create_vm(&kvm_fd, &vm_fd) < 0)
                return 1;

        page = (size_t) sysconf(_SC_PAGESIZE);
        size = (size_t) mib << 20;
        if (size > 0) {
                mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (mem == MAP_FAILED) {
                        perror("mmap");
                        return 1;
                }
                if (mergeable && madvise(mem, size, MADV_MERGEABLE) < 0) {
                        perror("madvise(MADV_MERGEABLE)");
                        return 1;
                }
                fill(mem, size, page, how, pct);
        }

        /* --kvm: the VM once the memory is there. With --kvm-first as well, there is one VM, the first. */
        if (kvm && vm_fd < 0 && create_vm(&kvm_fd, &vm_fd) < 0)
                return 1;

        /* Without this, the first run of the code after "ready" (stdio, sigsuspend, the signal frame) faults
         * in pages of libc and of the stack, and the RSS a test read at "ready" grows by some 10 pages a
         * moment later. Locked, every page of every mapping is resident now, and nothing maps more. */
        if (steady && mlockall(MCL_CURRENT) < 0) {
                perror("mlockall");
                return 1;
        }

        if (fork_child) {
                child = fork_sharer(mem, size, steady, &old);
                if (child < 0)
                        return 1;
                printf("child %d\n", (int) child);
        }

        printf("ready\n");
        fflush(stdout);

        while (!stop)
                sigsuspend(&old);

        if (child > 0) {
                kill(child, SIGTERM);
                waitpid(child, NULL, 0);
        }
        if (vm_fd >= 0)
                close(vm_fd);
        if (kvm_fd >= 0)
                close(kvm_fd);
        if (mem)
                munmap(mem, size);
        return 0;
}
