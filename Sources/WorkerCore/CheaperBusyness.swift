/// uWSGI's "busyness" cheaper algorithm as a value: once per cycle (--cheaper-overload seconds) it
/// is told how busy the workers were and how long the listen queue is, and answers how many workers
/// to add or remove, with the figures behind the decision for the log.
public struct CheaperBusyness: Sendable {
    public struct Config: Sendable {
        public var minimumWorkers: Int       // --cheaper
        public var maximumWorkers: Int       // --processes
        public var step: Int                 // --cheaper-step
        public var busynessMin: Int          // percent
        public var busynessMax: Int          // percent
        public var multiplier: Int           // cycles below min before a worker goes
        public var backlogAlert: Int         // queue length that spawns at once
        public var backlogStep: Int
        public var rssSoftBytes: Int         // 0: off; at or above it no worker is added
        public var rssHardBytes: Int         // 0: off; above it a worker is removed

        public init(minimumWorkers: Int, maximumWorkers: Int, step: Int, busynessMin: Int, busynessMax: Int,
                    multiplier: Int, backlogAlert: Int, backlogStep: Int, rssSoftBytes: Int, rssHardBytes: Int) {
            self.minimumWorkers = minimumWorkers
            self.maximumWorkers = maximumWorkers
            self.step = step
            self.busynessMin = busynessMin
            self.busynessMax = busynessMax
            self.multiplier = multiplier
            self.backlogAlert = backlogAlert
            self.backlogStep = backlogStep
            self.rssSoftBytes = rssSoftBytes
            self.rssHardBytes = rssHardBytes
        }
    }

    public let config: Config
    /// Consecutive cycles below --cheaper-busyness-min.
    public private(set) var quietCycles = 0

    public init(config: Config) { self.config = config }

    /// One cycle's decision: a positive delta adds workers, a negative one removes them, nil holds.
    public mutating func cycle(busyPercent: Double, activeWorkers: Int, listenQueue: Int?, totalRSSBytes: Int?) -> (delta: Int, why: String)? {
        let rss = totalRSSBytes ?? 0
        let busy = Int(busyPercent.rounded())
        let overSoft = config.rssSoftBytes > 0 && rss >= config.rssSoftBytes
        if config.rssHardBytes > 0 && rss > config.rssHardBytes && activeWorkers > config.minimumWorkers {
            quietCycles = 0
            return (-1, "workers' RSS \(rss >> 20) MiB > --cheaper-rss-limit-hard \(config.rssHardBytes >> 20) MiB")
        }
        if let q = listenQueue, q > config.backlogAlert {
            quietCycles = 0
            guard activeWorkers < config.maximumWorkers, !overSoft else { return nil }
            return (config.backlogStep, "listen queue \(q) > --cheaper-busyness-backlog-alert \(config.backlogAlert)")
        }
        if busy > config.busynessMax {
            quietCycles = 0
            guard activeWorkers < config.maximumWorkers else { return nil }
            if overSoft { return nil }
            return (config.step, "busyness \(busy)% > --cheaper-busyness-max \(config.busynessMax)%")
        }
        if busy < config.busynessMin {
            quietCycles += 1
            guard quietCycles >= config.multiplier, activeWorkers > config.minimumWorkers else { return nil }
            quietCycles = 0
            return (-1, "busyness \(busy)% < --cheaper-busyness-min \(config.busynessMin)% for \(config.multiplier) cycles")
        }
        quietCycles = 0
        return nil
    }
}
