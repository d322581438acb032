import Glibc
import Posix
import ServicesCore

extension TimerScheduler.Clock {
    /// Now, as the scheduler reads time: monotonic for intervals, wall clock and the local UTC offset for cron.
    static func now() -> Self {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var local = tm()
        localtime_r(&t, &local)
        return .init(monotonic: monotonicNanoseconds(), unixNanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec),
                     utcOffsetSeconds: Int64(local.tm_gmtoff))
    }
}
