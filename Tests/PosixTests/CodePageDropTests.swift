// Which code mappings a warmed-up worker may drop from its page tables, and when it may not at all.
import Foundation
import Glibc
import Posix
import Testing

@Suite struct CodePageDropTests {
    /// One smaps record: its header line, then its counters.
    func record(_ header: String, anonymous: Int = 0, swap: Int = 0) -> String {
        header + "\nSize:                 64 kB\nRss:                  12 kB\nAnonymous:      \(String(repeating: " ", count: 3))\(anonymous) kB\n"
            + "Swap:                 \(swap) kB\nSwapPss:              \(swap) kB\nVmFlags: rd ex mr mw me\n"
    }

    @Test func onlyFileBackedCodeWithNoPrivatePageResidentOrSwappedOut() {
        let smaps = [
            record("00400000-00410000 r-xp 00000000 08:01 11 /usr/bin/app"),
            record("00410000-00420000 r-xp 00000000 08:01 12 /opt/my lib/with spaces.so (deleted)"),
            // A text relocation's private copy, resident or swapped out, must not revert to the file.
            record("00420000-00430000 r-xp 00000000 08:01 13 /usr/lib/textrel.so", anonymous: 4),
            record("00430000-00440000 r-xp 00000000 08:01 14 /usr/lib/textrel-swapped.so", swap: 8),
            record("00440000-00450000 rw-p 00000000 08:01 15 /usr/lib/data.so"),
            record("00450000-00460000 r-xp 00000000 00:00 0"),
            record("00460000-00470000 r-xp 00000000 00:00 0 [vdso]"),
            record("00470000-00480000 r-xp 00000000 08:01 16 /usr/lib/last.so"),
        ].joined()
        let ranges = codeMappingsToDrop(smaps: Array(smaps.utf8))
        #expect(ranges == [0x400000..<0x410000, 0x410000..<0x420000, 0x470000..<0x480000])
    }

    @Test func threadCountFromStatus() {
        #expect(threadCount(status: Array("Name:\tswsgi\nThreads:\t3\nSigQ:\t0/1\n".utf8)) == 3)
        #expect(threadCount(status: Array("Name:\tswsgi\n".utf8)) == nil)
    }

    /// Another thread could unmap a listed range and map its own memory there before the madvise,
    /// which would zero that memory (seen with a WSGI app's thread remapping an address in a loop).
    @Test func aProcessWithOtherThreadsDropsNothing() throws {
        let started = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let t = Thread { started.signal(); release.wait() }
        t.start()
        started.wait()
        defer { release.signal() }
        let status = try #require(FileManager.default.contents(atPath: "/proc/self/status"))
        #expect((threadCount(status: Array(status)) ?? 0) > 1)
        #expect(dropCodePageTableEntries() == 0)
    }
}
