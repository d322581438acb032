import Glibc
import Posix
import WorkerCore

/// A worker's recycling limits (`--max-requests` with its delta, `--reload-on-rss`, `--reload-on-as`,
/// `--reload-on-exception`), checked after each request; one for both worker loops.
struct RecyclingLimits {
    let maxRequests: Int64
    let rssLimitBytes: Int
    /// `--reload-on-as`: recycle once the address space (VmSize) reaches this, as uWSGI (>=).
    let addressSpaceLimitBytes: Int
    let reloadOnException: Bool
    /// /proc/self/statm, open only when a memory limit is set.
    private let statmFD: Int32

    init(_ s: ServerSettings, workerID: Int) {
        // --max-requests-delta spreads recycling: worker N lasts N * delta requests longer.
        maxRequests = Int64(WorkerCore.maxRequests(base: s.maxRequests, delta: s.maxRequestsDelta, workerID: workerID))
        rssLimitBytes = s.reloadOnRSSMiB << 20
        addressSpaceLimitBytes = s.process.reloadOnAddressSpaceMiB << 20
        reloadOnException = s.process.reloadOnException
        statmFD = rssLimitBytes > 0 || addressSpaceLimitBytes > 0 ? open("/proc/self/statm", O_RDONLY | O_CLOEXEC) : -1
    }

    /// The limit reached after `served` requests (the last one raised: `appRaised`): the message asking the
    /// master for a replacement; nil while none is.
    /// Whether request `number` (the worker's count of requests started, 1-based) is the last before --max-requests:
    /// its response says `Connection: close`, so the client does not send another request on a connection about to end.
    @inline(__always)
    func isLast(request number: UInt64) -> Bool { maxRequests > 0 && number >= UInt64(maxRequests) }

    @inline(__always)
    func reached(served: Int64, appRaised: Bool) -> WorkerMessage? {
        if maxRequests > 0 && served >= maxRequests { return .recycleMaxRequests }
        if rssLimitBytes > 0, let rss = residentBytes(statmFD: statmFD), rss > rssLimitBytes { return .recycleRSS }
        if addressSpaceLimitBytes > 0, let vsz = addressSpaceBytes(statmFD: statmFD), vsz >= addressSpaceLimitBytes {
            return .recycleAddressSpace
        }
        if appRaised && reloadOnException { return .recycleException }
        return nil
    }
}
