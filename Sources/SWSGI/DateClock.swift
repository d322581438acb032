import Glibc
import HTTP

/// The `Date` value of the current second for every response of the process (RFC 9110 §6.6.1): the
/// clock is read per response (CLOCK_REALTIME_COARSE, a vDSO read, no syscall) and the text made once a
/// second. A mutex, not a per-thread copy, because an app's threads and request threads share it; it is
/// held for a compare and a reference copy.
final class DateClock: @unchecked Sendable {
    static let shared = DateClock()

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var second = Int.min
    private var text: [UInt8] = []

    private init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    /// IMF-fixdate of now, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    static var now: [UInt8] { shared.current() }

    private func current() -> [UInt8] {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &ts)
        let now = Int(ts.tv_sec)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if now != second {
            second = now
            text = HTTPDate.format(epochSeconds: now)
        }
        return text
    }
}
