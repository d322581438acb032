import Glibc
import Posix

/// One shared word per signal (256), so a unique job never overlaps itself across processes:
/// 0 = idle, -1 = dispatched by the master, else the pid running it.
struct UniqueRunFlags: @unchecked Sendable {
    static let bytes = 256 * 4
    let base: UnsafeMutableRawPointer

    private func word(_ signal: Int) -> UnsafeMutableRawPointer { base + signal * 4 }

    /// Master: takes the flag for a dispatch; false while the last run is still queued or running.
    func claim(_ signal: Int) -> Bool { SharedWord.compareExchange32(word(signal), 0, -1) }

    /// The run starts in this process.
    func markRunning(_ signal: Int) { SharedWord.store32(word(signal), getpid()) }

    /// The run ended, or its dispatch reached no queue.
    func clear(_ signal: Int) { SharedWord.store32(word(signal), 0) }

    /// Master: a reaped process's runs are over.
    func clear(heldBy pid: Int32) {
        for s in 0..<256 where SharedWord.load32(word(s)) == pid { SharedWord.store32(word(s), 0) }
    }
}
