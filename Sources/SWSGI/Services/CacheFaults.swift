import Glibc
import Posix

/// Faults a test injects into one `SharedCache` value (through `Cache`'s underscored API): stop this
/// process after its Nth journaled store (a test then SIGKILLs it half-way through a write), or simulate
/// that death in-process (later stores skipped, then rolled back as recovery would). The caches the server
/// makes carry none, so a store checks one nil field of its own.
final class CacheFaults: @unchecked Sendable {
    /// 0 = off; counts down per journaled store.
    var storesBeforeStall: Int
    var storesBeforeCrash: Int
    /// Set when the simulated death happened: later stores are skipped until the operation ends.
    var crashed = false

    init(storesBeforeStall: Int = 0, storesBeforeCrash: Int = 0) {
        self.storesBeforeStall = storesBeforeStall
        self.storesBeforeCrash = storesBeforeCrash
    }

    func afterJournaledStore() {
        if storesBeforeCrash > 0 {
            storesBeforeCrash -= 1
            if storesBeforeCrash == 0 { crashed = true }
        }
        guard storesBeforeStall > 0 else { return }
        storesBeforeStall -= 1
        if storesBeforeStall == 0 {
            writeStderr("swsgi pid \(getpid()): cache write stalled for a test")
            while true { pause() }
        }
    }
}
