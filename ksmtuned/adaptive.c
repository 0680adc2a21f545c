/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The adaptive scan controller: fast while scanning merges, backing off as soon as it stops paying. */
#include "adaptive.h"

/* At or above this rate ksmd wakes every 10 ms (the original's floor); below, it wakes less often. */
#define FAST_SLEEP_MS 10
#define SLOW_PAGES    100
#define MAX_SLEEP_MS  1000
#define MIN_CHECK     UINT64_C(100000)   /* 0.1 s: never poll faster than this */
#define FAST_CHECK    UINT64_C(100000)   /* while scanning fast: how long the fastest rate outlasts its yield */
#define GUESTS_GAP    UINT64_C(250000)   /* the guests' memory is read at most this often */
#define WATCH_CHECK   UINT64_C(2000000)  /* at the floor, while watching the guests' memory */
#define IDLE_CHECK    UINT64_C(10000000) /* at the floor */
#define GROWTH_SPAN   UINT64_C(500000)   /* the guests' memory is compared with a reading kept until this old */
#define CPU_SPAN      UINT64_C(500000)   /* ksmd's CPU is held against the ceiling averaged over at least this */

const char *adaptive_why_string(AdaptiveWhy why) {
        static const char *const s[] = {
                [WHY_HOLD] = "nothing scanned: holding",
                [WHY_START] = "KSM started: scanning fast",
                [WHY_EVENT] = "guests changed: scanning fast",
                [WHY_GROWING] = "guests' memory growing: scanning fast",
                [WHY_SWEEP] = "new memory not yet covered by a round of the scan: scanning fast",
                [WHY_NEW_PAGES] = "new mergeable pages: scanning fast",
                [WHY_PENDING] = "pages waiting for another look elsewhere: scanning fast",
                [WHY_RESET] = "counters reset: scanning fast",
                [WHY_PAYING] = "scanning still merging: scanning fast",
                [WHY_SWEPT] = "new memory had its second look: backing off",
                [WHY_IDLE] = "scanning merges too little: backing off",
                [WHY_CPU] = "ksmd over its CPU ceiling: backing off",
        };

        return why < sizeof(s) / sizeof(s[0]) ? s[why] : "?";
}

/**
 * adaptive_knobs() - pages_to_scan and sleep_millisecs for a scan rate in pages/s.
 * @page_ns: ksmd's CPU time per page scanned, ns, as last measured; 0: unknown.
 *
 * Fast rates wake ksmd every 10 ms with as many pages as it takes; slow ones scan 100 pages a wake-up
 * and sleep longer, so an idle ksmd wakes rarely. ksmd sleeps after it has scanned its pages, so a
 * wake-up lasts the sleep plus the scanning: at fast rates, pages_to_scan grows by that time (rate × 10 ms
 * / (1 − rate × @page_ns)), so that ksmd scans at the rate asked for, to at most ADAPTIVE_MAX_STRETCH times
 * rate × 10 ms.
 */
void adaptive_knobs(uint64_t rate, uint64_t page_ns, uint64_t *ret_pages, uint64_t *ret_sleep_ms) {
        if (rate == 0)
                rate = 1;
        if (rate >= SLOW_PAGES * 1000 / FAST_SLEEP_MS) {
                uint64_t pages = rate * FAST_SLEEP_MS / 1000;
                /* The share of each second ksmd is awake, ‰, at this rate. */
                uint64_t busy = rate * page_ns / UINT64_C(1000000);

                if (busy * ADAPTIVE_MAX_STRETCH >= 1000 * (ADAPTIVE_MAX_STRETCH - 1))
                        pages *= ADAPTIVE_MAX_STRETCH;
                else
                        pages = pages * 1000 / (1000 - busy);
                *ret_pages = pages;
                *ret_sleep_ms = FAST_SLEEP_MS;
                return;
        }
        *ret_pages = SLOW_PAGES;
        *ret_sleep_ms = SLOW_PAGES * 1000 / rate;
        if (*ret_sleep_ms > MAX_SLEEP_MS)
                *ret_sleep_ms = MAX_SLEEP_MS;
}

/**
 * adaptive_announce() - a guest event came at @now (µs, CLOCK_MONOTONIC), before the adjustment that follows it
 * once events settle: a guest announced (a KVM VM created, a libvirt guest started), or gone (the events do
 * not tell the daemon which, so a stop is watched the same way).
 *
 * A VMM creates the VM first and maps and fills the guest's memory after, so scanning fast at the
 * announcement may pass before there is anything to merge. Instead, for ADAPTIVE_ANNOUNCE_USEC or until the
 * guests' memory grows, the checks come every 0.25 s, each reading the guests' memory: its growth starts
 * the sweep within about that. The caller arms a check now and sets the last step's watch_guests for it. The
 * adjustment that follows, an event, does not start the sweep over when one began since the announcement: the
 * guest's memory, there before it grew, is in that sweep's round.
 */
void adaptive_announce(AdaptiveState *st, uint64_t now) {
        st->announced = now;
        st->announce_until = now + ADAPTIVE_ANNOUNCE_USEC;
        if (st->watch_until < st->announce_until)
                st->watch_until = st->announce_until;
}

static uint64_t merged(const KsmCounters *c) {
        return c->pages_sharing + c->zero_pages;
}

/* The pages KSM tracks (its rmap items): one per page it has seen in a mergeable area and not since dropped. */
static uint64_t tracked(const KsmCounters *c) {
        return c->pages_shared + c->pages_sharing + c->pages_unshared + c->pages_volatile;
}

static uint64_t delta(uint64_t now, uint64_t then) {
        return now > then ? now - then : 0;
}

/* The pages ksmd has looked at or passed over (smart_scan), ever: where its cursor is, in pages. */
static uint64_t looked_at(const KsmCounters *c) {
        return c->pages_scanned + c->pages_skipped;
}

/* @permille ‰ of @pages, but at least ADAPTIVE_PAYING_PAGES: how many pages make a difference. */
static uint64_t share_at_least(uint64_t pages, unsigned permille) {
        uint64_t share = pages * permille / 1000;

        return share > ADAPTIVE_PAYING_PAGES ? share : ADAPTIVE_PAYING_PAGES;
}

/* A round of the sweep starts here: it ends once ksmd has looked at as many pages as KSM tracks. @again: it
 * follows a round that saw new pages, for their second visit. */
static void sweep_round(AdaptiveState *st, const KsmCounters *c, bool again) {
        st->sweep_new = again ? delta(tracked(c), st->sweep_seen) : 0;
        st->sweep_resolved = 0;
        st->sweep_from = looked_at(c);
        st->sweep_seen = tracked(c);
        st->sweep_again = again;
}

/* Scan fast from here until a whole round of the scan has covered everything there is now. */
static void sweep(AdaptiveState *st, const KsmCounters *c) {
        st->pending_from = 0;
        st->pending_gave_up = false;
        st->sweep_skipped = c->pages_skipped;
        st->sweep_until = c->full_scans + ADAPTIVE_SWEEP_SCANS;
        st->sweep_volatile = c->pages_volatile;
        sweep_round(st, c, false);
}

/*
 * Whether the @fresh pages a round of the sweep saw for the first time have all had their second visit:
 * as many pages merged or put in the unstable tree since the round began (st->sweep_resolved), but for 1 %,
 * or pages_volatile back to the least it was in the first round (pages that waited from before the sweep
 * may resolve meanwhile).
 */
static bool resolved(const AdaptiveState *st, const KsmCounters *c, uint64_t fresh) {
        return st->sweep_resolved + share_at_least(fresh, 10) >= fresh ||
               c->pages_volatile < st->sweep_volatile + ADAPTIVE_PAYING_PAGES;
}

/*
 * Whether the sweep is still going. The kernel queues a newly mergeable process just behind its cursor, so
 * the cursor reaches it within one round of every page there is: as many pages looked at (or skipped) as
 * KSM tracks, counting the new ones as they are seen. A page seen for the first time is merged at a later
 * visit, not at the first: a round that saw new pages is followed by another, unless they have all had
 * that visit already (see resolved()), as when the cursor met them early in the round. That second round
 * ends early once they have, and nothing new has been seen since. Without those counters (before Linux
 * 6.7): ADAPTIVE_SWEEP_SCANS full scans.
 */
static bool sweeping(AdaptiveState *st, const KsmCounters *c) {
        if (st->sweep_until == 0)
                return false;
        if (!c->has_pages_scanned || !st->last.has_pages_scanned)
                return c->full_scans < st->sweep_until;
        if (delta(looked_at(c), st->sweep_from) < tracked(c)) {
                if (!st->sweep_again || tracked(c) >= st->sweep_seen + ADAPTIVE_PAYING_PAGES)
                        return true;
                return !resolved(st, c, st->sweep_new);
        }
        if (tracked(c) < st->sweep_seen + ADAPTIVE_PAYING_PAGES)
                return false;
        if (!st->sweep_again && resolved(st, c, tracked(c) - st->sweep_seen))
                return false;
        sweep_round(st, c, true);
        return true;
}

/*
 * The pages that wait for another look: pages_volatile (seen, but in neither tree: their content was not
 * yet the same at two visits, as with memory still being written when ksmd passed) less the pages smart_scan
 * passed over since the last sweep began, since a skipped page leaves the unstable tree and counts as
 * volatile too.
 */
static uint64_t waiting(const AdaptiveState *st, const KsmCounters *c) {
        return delta(c->pages_volatile, delta(c->pages_skipped, st->sweep_skipped));
}

/* Pages waiting count once they are ADAPTIVE_PENDING_PERMILLE ‰ of the pages KSM tracks, and at least
 * ADAPTIVE_PAYING_PAGES. */
static uint64_t enough_waiting(const KsmCounters *c) {
        return share_at_least(tracked(c), ADAPTIVE_PENDING_PERMILLE);
}

/*
 * The pages put back in the unstable tree since the previous step that smart_scan had skipped: a skipped
 * page leaves the tree (pages_unshared down, pages_volatile up) and comes back at its next visit, with
 * nothing new to merge. Counted when hardly any pages wait for another look (see waiting()), so that
 * pages_volatile's fall is theirs: as many as pages_unshared rose and pages_volatile fell, and at most the
 * pages skipped since the last sweep began. @unshared_up: how much pages_unshared rose; the result is at
 * most that.
 */
static uint64_t skipped_back(const AdaptiveState *st, const KsmCounters *c, uint64_t unshared_up) {
        uint64_t back = unshared_up;
        uint64_t fell = delta(st->last.pages_volatile, c->pages_volatile);
        uint64_t skipped = delta(c->pages_skipped, st->sweep_skipped);

        if (waiting(st, c) >= enough_waiting(c))
                return 0;
        if (fell < back)
                back = fell;
        return skipped < back ? skipped : back;
}

/*
 * Whether to keep going round to the pages that wait for another look (see waiting()), when enough do.
 * Where ksmd scans finds too little, they are elsewhere in the round: keep at it for up to a whole round
 * (pages_scanned + pages_skipped as many as KSM tracks) from when going round began or last merged that
 * many pages. A round without that means they will not merge soon: leave them to the floor until new
 * memory (a sweep) comes. Needs pages_scanned (Linux 6.7+).
 */
static bool pending(AdaptiveState *st, const KsmCounters *c) {
        uint64_t pos = looked_at(c);
        uint64_t enough = enough_waiting(c);

        if (!c->has_pages_scanned || st->pending_gave_up || waiting(st, c) < enough)
                return false;
        if (st->pending_from == 0 || merged(c) >= st->pending_merged + enough) {
                st->pending_from = pos;
                st->pending_merged = merged(c);
                return true;
        }
        if (delta(pos, st->pending_from) < tracked(c))
                return true;
        st->pending_from = 0;
        st->pending_gave_up = true;
        return false;
}

/*
 * The pages put in the unstable tree since the previous step, for the sweep's second round: pages_unshared's
 * rise, plus the @skipped pages smart_scan passed over meanwhile, at most as many as were in the tree: a
 * skipped page leaves it, and hides as many put there, as when the old guests' unique pages are skipped while
 * the new guest's own go in. smart_scan also skips pages that were volatile, never in the tree: this may
 * count too many, and end the round early; the next check then finds the new pages still merging, which
 * pays, and the rate climbs back. Counted in the second round only: the first decides whether there is a
 * second, and ending it wrongly would leave the new pages to the yield alone.
 */
static uint64_t put_unstable(const AdaptiveState *st, const KsmCounters *c, uint64_t skipped) {
        uint64_t left = 0;

        if (st->sweep_again)
                left = skipped < st->last.pages_unshared ? skipped : st->last.pages_unshared;
        return delta(c->pages_unshared + left, st->last.pages_unshared);
}

/*
 * ksmd's CPU for the ceiling: its average, in ‰ of one CPU, over the steps since it was last judged (@pages
 * scanned, @interval µs at @cpu_permille this step), once they span at least CPU_SPAN; else -1 (not judged at
 * this step). At that point, st->page_ns becomes ksmd's CPU per page over the same span, for the knobs, when
 * it scanned at least ADAPTIVE_PAGE_COST_PAGES. A round's costly stretches (pages searched in both trees) and
 * its cheap ones (pages already merged) each pass in tenths of a second: judged over each check, ksmd would be
 * held under the ceiling in the first and not reach it in the second, and the knobs sized for the last
 * stretch would be wrong for the next.
 */
static int cpu_judge(AdaptiveState *st, int cpu_permille, uint64_t interval, uint64_t pages) {
        int avg;

        if (cpu_permille < 0 || interval == 0)
                return -1;
        st->cpu_ns += (uint64_t) cpu_permille * interval;
        st->cpu_span += interval;
        st->cpu_pages += pages;
        if (st->cpu_span < CPU_SPAN)
                return -1;
        avg = (int) ((st->cpu_ns + st->cpu_span / 2) / st->cpu_span);
        /* ksmd's CPU per page over the same span, for the knobs (see adaptive_knobs()). */
        if (st->cpu_pages >= ADAPTIVE_PAGE_COST_PAGES)
                st->page_ns = st->cpu_ns / st->cpu_pages;
        st->cpu_ns = st->cpu_span = st->cpu_pages = 0;
        return avg;
}

/* The rate that brings ksmd's CPU back to the ceiling, at least half the current one. */
static uint64_t cpu_cut(const AdaptiveSettings *s, uint64_t rate, int cpu_permille) {
        uint64_t to = rate * s->max_cpu / (uint64_t) cpu_permille;

        return to > rate / 2 ? to : rate / 2;
}

/* Back up after a cut, towards the rate the ceiling allows, at most doubling. */
static uint64_t cpu_regain(const AdaptiveSettings *s, uint64_t rate, int cpu_permille) {
        if (cpu_permille <= 0 || (uint64_t) cpu_permille * 2 <= s->max_cpu)
                return rate * 2;
        return rate * s->max_cpu / (uint64_t) cpu_permille;
}

/*
 * The rate while scanning pays or new memory is being covered: the fastest, or, after a cut for the CPU
 * ceiling, back towards it (see cpu_regain()). Still over the ceiling, it stays where it is, and the ceiling's
 * cap in adaptive_step() decides.
 */
static uint64_t climb(const AdaptiveSettings *s, const AdaptiveState *st, int cpu_permille, bool over_cpu) {
        if (!st->cpu_limited)
                return s->max_rate;
        if (cpu_permille < 0) /* not judged at this step */
                return st->rate;
        return over_cpu ? st->rate : cpu_regain(s, st->rate, cpu_permille);
}

/*
 * The pages ksmd looked at since the previous step: the kernel's count where it has one, else what the
 * knobs asked for over the time passed (more than it did, when ksmd could not keep up).
 */
static uint64_t scanned_since(const AdaptiveState *st, const AdaptiveInput *in) {
        const KsmCounters *c = &in->counters;

        if (c->has_pages_scanned && st->last.has_pages_scanned)
                return delta(c->pages_scanned, st->last.pages_scanned);
        return st->rate * delta(in->now, st->last_time) / UINT64_C(1000000);
}

/**
 * adaptive_step() - one check of the controller: the rate to scan at now, and when to look again.
 * @in: the counters, ksmd's CPU, whether an event happened, the time and, when read, the guests' memory.
 *
 * New memory to merge (KSM turned on, a guest event, a reload, the guests' resident memory growing by at
 * least ADAPTIVE_GROWTH_KB at ADAPTIVE_GROWTH_KB_PER_S or more, the counters reset by an unmerge) sets the
 * fastest rate and keeps it until ksmd has gone round every page once (see sweeping()): the kernel queues a
 * newly mergeable process behind its scan cursor, so only a whole round is sure to reach it. After that,
 * every check judges
 * what was scanned since the previous one: when the pages newly merged (pages_sharing + ksm_zero_pages), those
 * newly seen (pages_shared + pages_sharing + pages_unshared + pages_volatile) and those newly put in the
 * unstable tree (pages_unshared) are at least
 * ADAPTIVE_PAYING_PERMILLE ‰ of the pages scanned (pages_scanned, Linux 6.7+; before, the rate × the time),
 * scanning pays and the rate goes to the fastest; when not, it quarters, down to the floor, or drops to the
 * floor at once when they are under a quarter of that share, unless many pages wait for another look
 * elsewhere in the round (see pending()): then it stays at the fastest to reach them. Pages put in the
 * unstable tree when nothing merged, nothing was new and none are left waiting do not pay (they found no
 * partner), nor does what the sweep's second round saw merging once it ends with none waiting (its new
 * pages): a quarter of the rate, then. When ksmd's CPU, averaged over at least CPU_SPAN (see cpu_judge()), is
 * over its ceiling, the rate is at most what would meet the ceiling (cut, at most halved), lower if the yield
 * says so; while it pays or new memory is covered, it climbs back the same way when the ceiling is next judged,
 * and holds in between. An event overrides the ceiling for its step. A check that finds
 * nothing scanned keeps the rate. Checks come every 0.1 s while scanning fast, every 2 s at the floor or after nothing
 * was scanned while the guests' memory is watched (ADAPTIVE_WATCH_USEC after a start, an event or growth), else every
 * 10 s; never sooner than 0.1 s nor later than s->max_check. While watched, the guests' memory is asked for
 * (ret->watch_guests) at most every 0.25 s.
 */
void adaptive_step(const AdaptiveSettings *s, AdaptiveState *st, const AdaptiveInput *in, AdaptiveStep *ret) {
        const KsmCounters *c = &in->counters;
        AdaptiveWhy why = WHY_HOLD;
        uint64_t scanned = scanned_since(st, in);
        uint64_t interval = delta(in->now, st->last_time);
        uint64_t skipped = c->has_pages_scanned && st->last.has_pages_scanned
                                   ? delta(c->pages_skipped, st->last.pages_skipped)
                                   : 0;
        uint64_t gained = delta(merged(c), merged(&st->last));
        uint64_t unshared_up = delta(c->pages_unshared, st->last.pages_unshared);
        uint64_t first_seen = delta(tracked(c), tracked(&st->last));
        /* Pages seen for the first time, or checked again and put in the unstable tree: both on the way to
         * merging (the first look only takes a checksum). */
        uint64_t seen = first_seen + unshared_up - skipped_back(st, c, unshared_up);
        /* Nothing merged, nothing new, and no page left waiting for another look: the pages just put in the
         * unstable tree were the last to wait, and found no partner. They may yet pair with a page later in
         * the round, so they keep the rate off the floor, but not at the fastest. */
        bool unpaired = gained == 0 && first_seen < ADAPTIVE_PAYING_PAGES && waiting(st, c) < ADAPTIVE_PAYING_PAGES;
        uint64_t yield = gained + (unpaired ? 0 : seen);
        bool pays = yield >= ADAPTIVE_PAYING_PAGES && yield * 1000 >= scanned * ADAPTIVE_PAYING_PERMILLE;
        int cpu = cpu_judge(st, in->cpu_permille, interval,
                            c->has_pages_scanned && st->last.has_pages_scanned ? scanned : 0);
        bool over_cpu = s->max_cpu > 0 && cpu > (int) s->max_cpu;
        bool growing = false;
        bool watching;           /* the guests' memory, after a start, an event or growth */
        bool new_memory = false; /* this step starts a sweep at the fastest rate, over the ceiling or not */
        uint64_t was = st->rate;
        uint64_t next;

        /* For the sweep's second round, counted at every step, whatever it decides: the pages resolved, and
         * the fewest volatile pages the first round saw (those waiting from before may resolve meanwhile). */
        st->sweep_resolved += gained + put_unstable(st, c, skipped);
        if (st->sweep_until > 0 && !st->sweep_again && c->pages_volatile < st->sweep_volatile)
                st->sweep_volatile = c->pages_volatile;

        if (in->has_guests) {
                uint64_t grown = delta(in->guests_kb, st->guests_kb);
                uint64_t span = delta(in->now, st->guests_time);

                st->guests_read = in->now;

                growing = st->have_guests && grown >= ADAPTIVE_GROWTH_KB &&
                          grown * UINT64_C(1000000) >= ADAPTIVE_GROWTH_KB_PER_S * (span ? span : 1);
                /* The reading compared with is kept until it is GROWTH_SPAN old (or growth was found, or the
                 * memory shrank): growth is judged over about the same span however often the checks come. */
                if (!st->have_guests || growing || span >= GROWTH_SPAN || in->guests_kb < st->guests_kb) {
                        st->have_guests = true;
                        st->guests_kb = in->guests_kb;
                        st->guests_time = in->now;
                }
        }

        if (!st->started || in->event || growing) {
                /* The event of an announced guest whose memory started a sweep already (see adaptive_announce()). */
                bool covered = in->event && !growing && st->sweep_until > 0 && st->announced > 0 &&
                               st->sweep_began >= st->announced;

                why = !st->started ? WHY_START : in->event ? WHY_EVENT : WHY_GROWING;
                st->started = true;
                st->rate = s->max_rate;
                st->cpu_limited = false;
                st->watch_until = in->now + ADAPTIVE_WATCH_USEC;
                if (growing)
                        st->announce_until = 0; /* the memory is there */
                if (covered)
                        st->announced = 0; /* that event is this one: the next starts over */
                else {
                        sweep(st, c);
                        st->sweep_began = in->now;
                }
                new_memory = true;
        } else if (c->full_scans < st->last.full_scans || merged(c) + 1024 < merged(&st->last) / 2) {
                /* Counters went back: run=2 unmerged everything. Whatever merges next is new. */
                st->rate = s->max_rate;
                st->cpu_limited = false;
                sweep(st, c);
                new_memory = true;
                why = WHY_RESET;
        } else if (sweeping(st, c)) {
                st->rate = climb(s, st, cpu, over_cpu);
                why = WHY_SWEEP;
        } else if (st->sweep_until > 0 && st->sweep_again && scanned > 0 && waiting(st, c) < enough_waiting(c)) {
                /* The sweep's second round just ended: the new pages have had the visit that merges them, and
                 * what this check saw merging was theirs. Nothing is known to be left: a quarter of the rate,
                 * the floor next if nothing more turns up. */
                st->sweep_until = 0;
                st->rate /= 4;
                st->cpu_limited = false;
                why = WHY_SWEPT;
        } else {
                st->sweep_until = 0;
                if (scanned == 0)
                        why = WHY_HOLD;
                else if (pays || pending(st, c)) {
                        /* Scanning pays, or goes round to pages waiting elsewhere (asked only when it does
                         * not pay). */
                        st->rate = climb(s, st, cpu, over_cpu);
                        why = !pays ? WHY_PENDING : seen > gained ? WHY_NEW_PAGES : WHY_PAYING;
                } else {
                        /* Under a quarter of the threshold: nothing left to find at this pace, the floor at
                         * once; else a quarter of the rate. */
                        bool nothing = (gained + seen) * 1000 * 4 < scanned * ADAPTIVE_PAYING_PERMILLE;

                        st->rate = nothing ? s->min_rate : st->rate / 4;
                        st->cpu_limited = false;
                        why = WHY_IDLE;
                }
        }
        /* The CPU ceiling caps whatever was decided, but on new memory: over it, the rate goes to what would
         * meet it (at most halved), unless the yield already took it lower. */
        if (over_cpu && !new_memory) {
                uint64_t cut = cpu_cut(s, was, cpu);

                if (st->rate > cut) {
                        st->rate = cut;
                        st->cpu_limited = true;
                        why = WHY_CPU;
                }
        }

        if (st->rate >= s->max_rate) {
                st->rate = s->max_rate;
                st->cpu_limited = false;
        }
        if (st->rate < s->min_rate)
                st->rate = s->min_rate;
        st->last = *c;
        st->last_time = in->now;

        *ret = (AdaptiveStep) {
                .why = why,
                .scanned = scanned,
                .skipped = skipped,
                .gained = gained,
                .seen = seen,
                .tracked = tracked(c),
                .volatile_pages = c->pages_volatile,
        };
        /* When the yield backs the rate off (a quarter, the floor, the sweep's second round over), the pages
         * ahead cost less than the merging ones just measured: no stretch, so as not to scan more than asked
         * for while the yield is judged. A cut for the CPU ceiling keeps the stretch. */
        adaptive_knobs(st->rate, why == WHY_IDLE || why == WHY_SWEPT ? 0 : st->page_ns, &ret->pages_to_scan,
                       &ret->sleep_ms);

        watching = in->now < st->watch_until;
        if (why != WHY_HOLD && (st->sweep_until > 0 || st->rate > s->min_rate))
                next = FAST_CHECK;
        else
                next = watching ? WATCH_CHECK : IDLE_CHECK;
        /* A guest announced, its memory not yet seen growing: look at it every GUESTS_GAP. */
        if (in->now < st->announce_until && next > GUESTS_GAP)
                next = GUESTS_GAP;
        if (next > s->max_check)
                next = s->max_check;
        if (next < MIN_CHECK)
                next = MIN_CHECK;
        ret->next_check = next;
        /* The next check reads the guests' memory while it is watched, at most every GUESTS_GAP. */
        ret->watch_guests = watching && (!st->have_guests || in->now + next >= st->guests_read + GUESTS_GAP);
}
