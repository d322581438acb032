import Testing
import WorkerCore

@Suite struct CheaperBusynessTests {
    static func config(min: Int = 1, max: Int = 4, step: Int = 1, busyMin: Int = 25, busyMax: Int = 50, multiplier: Int = 3,
                       backlogAlert: Int = 33, backlogStep: Int = 1, soft: Int = 0, hard: Int = 0) -> CheaperBusyness.Config {
        .init(minimumWorkers: min, maximumWorkers: max, step: step, busynessMin: busyMin, busynessMax: busyMax,
              multiplier: multiplier, backlogAlert: backlogAlert, backlogStep: backlogStep, rssSoftBytes: soft, rssHardBytes: hard)
    }

    @Test func spawnsStepWorkersAboveBusynessMax() {
        var c = CheaperBusyness(config: Self.config(step: 2))
        let d = c.cycle(busyPercent: 80, activeWorkers: 1, listenQueue: 0, totalRSSBytes: nil)
        #expect(d?.delta == 2)
        #expect(d?.why == "busyness 80% > --cheaper-busyness-max 50%")
    }

    @Test func busynessMaxItselfHolds() {
        var c = CheaperBusyness(config: Self.config())
        #expect(c.cycle(busyPercent: 50, activeWorkers: 1, listenQueue: 0, totalRSSBytes: nil) == nil)
        #expect(c.cycle(busyPercent: 50.4, activeWorkers: 1, listenQueue: 0, totalRSSBytes: nil) == nil)
        #expect(c.cycle(busyPercent: 50.6, activeWorkers: 1, listenQueue: 0, totalRSSBytes: nil)?.delta == 1)
    }

    @Test func noSpawnAtTheMaximum() {
        var c = CheaperBusyness(config: Self.config(max: 4))
        #expect(c.cycle(busyPercent: 100, activeWorkers: 4, listenQueue: 0, totalRSSBytes: nil) == nil)
        #expect(c.cycle(busyPercent: 100, activeWorkers: 3, listenQueue: 0, totalRSSBytes: nil)?.delta == 1)
    }

    @Test func removesOneAfterMultiplierQuietCyclesDownToTheMinimum() {
        var c = CheaperBusyness(config: Self.config(min: 1, multiplier: 3))
        #expect(c.cycle(busyPercent: 10, activeWorkers: 3, listenQueue: 0, totalRSSBytes: nil) == nil)
        #expect(c.quietCycles == 1)
        #expect(c.cycle(busyPercent: 10, activeWorkers: 3, listenQueue: 0, totalRSSBytes: nil) == nil)
        let d = c.cycle(busyPercent: 10, activeWorkers: 3, listenQueue: 0, totalRSSBytes: nil)
        #expect(d?.delta == -1)
        #expect(d?.why == "busyness 10% < --cheaper-busyness-min 25% for 3 cycles")
        #expect(c.quietCycles == 0)
        // Another full run of quiet cycles for the next one.
        #expect(c.cycle(busyPercent: 0, activeWorkers: 2, listenQueue: 0, totalRSSBytes: nil) == nil)
        #expect(c.cycle(busyPercent: 0, activeWorkers: 2, listenQueue: 0, totalRSSBytes: nil) == nil)
        #expect(c.cycle(busyPercent: 0, activeWorkers: 2, listenQueue: 0, totalRSSBytes: nil)?.delta == -1)
        // At the minimum nothing goes, however quiet.
        for _ in 0..<10 { #expect(c.cycle(busyPercent: 0, activeWorkers: 1, listenQueue: 0, totalRSSBytes: nil) == nil) }
    }

    @Test func aBusyOrMiddleCycleRestartsTheQuietCount() {
        var c = CheaperBusyness(config: Self.config(multiplier: 2))
        #expect(c.cycle(busyPercent: 10, activeWorkers: 3, listenQueue: 0, totalRSSBytes: nil) == nil)
        #expect(c.cycle(busyPercent: 30, activeWorkers: 3, listenQueue: 0, totalRSSBytes: nil) == nil)  // between min and max
        #expect(c.quietCycles == 0)
        #expect(c.cycle(busyPercent: 10, activeWorkers: 3, listenQueue: 0, totalRSSBytes: nil) == nil)
        #expect(c.cycle(busyPercent: 90, activeWorkers: 4, listenQueue: 0, totalRSSBytes: nil) == nil)  // busy, at max
        #expect(c.quietCycles == 0)
        #expect(c.cycle(busyPercent: 10, activeWorkers: 3, listenQueue: 0, totalRSSBytes: nil) == nil)
        #expect(c.cycle(busyPercent: 10, activeWorkers: 3, listenQueue: 0, totalRSSBytes: nil)?.delta == -1)
        // busynessMin itself is not below it.
        #expect(c.cycle(busyPercent: 25, activeWorkers: 3, listenQueue: 0, totalRSSBytes: nil) == nil)
        #expect(c.quietCycles == 0)
    }

    @Test func backlogAlertSpawnsBacklogStep() {
        var c = CheaperBusyness(config: Self.config(step: 1, multiplier: 1, backlogAlert: 33, backlogStep: 3))
        // Even an idle cycle spawns when the queue is long.
        let d = c.cycle(busyPercent: 0, activeWorkers: 1, listenQueue: 34, totalRSSBytes: nil)
        #expect(d?.delta == 3)
        #expect(d?.why == "listen queue 34 > --cheaper-busyness-backlog-alert 33")
        // Exactly the alert is not above it: the busyness rules apply.
        #expect(c.cycle(busyPercent: 0, activeWorkers: 2, listenQueue: 33, totalRSSBytes: nil)?.delta == -1)
        // At the maximum the alert spawns nothing (and does not count as quiet).
        #expect(c.cycle(busyPercent: 0, activeWorkers: 4, listenQueue: 100, totalRSSBytes: nil) == nil)
        #expect(c.quietCycles == 0)
        // Unknown queue: busyness only.
        #expect(c.cycle(busyPercent: 90, activeWorkers: 1, listenQueue: nil, totalRSSBytes: nil)?.delta == 1)
    }

    @Test func rssSoftLimitBlocksSpawning() {
        let mib = 1 << 20
        var c = CheaperBusyness(config: Self.config(soft: 100 * mib))
        #expect(c.cycle(busyPercent: 100, activeWorkers: 1, listenQueue: 0, totalRSSBytes: 100 * mib) == nil)  // at the limit
        #expect(c.cycle(busyPercent: 100, activeWorkers: 1, listenQueue: 500, totalRSSBytes: 150 * mib) == nil)  // backlog too
        #expect(c.cycle(busyPercent: 100, activeWorkers: 1, listenQueue: 0, totalRSSBytes: 100 * mib - 1)?.delta == 1)
        // Below the soft limit nothing is removed for memory.
        #expect(c.cycle(busyPercent: 30, activeWorkers: 3, listenQueue: 0, totalRSSBytes: 150 * mib) == nil)
    }

    @Test func rssHardLimitRemovesDownToTheMinimum() {
        let mib = 1 << 20
        var c = CheaperBusyness(config: Self.config(min: 2, soft: 100 * mib, hard: 200 * mib))
        // Above the hard limit a worker goes even while busy.
        let d = c.cycle(busyPercent: 100, activeWorkers: 4, listenQueue: 50, totalRSSBytes: 201 * mib)
        #expect(d?.delta == -1)
        #expect(d?.why == "workers' RSS 201 MiB > --cheaper-rss-limit-hard 200 MiB")
        #expect(c.cycle(busyPercent: 100, activeWorkers: 3, listenQueue: 0, totalRSSBytes: 201 * mib)?.delta == -1)
        // Not below the minimum; and at the minimum, busy, over soft: nothing.
        #expect(c.cycle(busyPercent: 100, activeWorkers: 2, listenQueue: 0, totalRSSBytes: 300 * mib) == nil)
        // Exactly the hard limit is not above it (but it is over the soft one: no spawn).
        #expect(c.cycle(busyPercent: 100, activeWorkers: 3, listenQueue: 0, totalRSSBytes: 200 * mib) == nil)
    }
}
