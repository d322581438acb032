import Foundation
import Glibc
import Testing

/// Resident kB of a process's mappings of `path` with the given permissions (from /proc/PID/smaps).
func residentKiB(_ pid: Int32, path: String, perms: String) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/smaps", encoding: .utf8) else { return nil }
    var total = 0, inMapping = false
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if let first = fields.first, first.contains("-"), !first.contains(":") {
            inMapping = fields.count >= 6 && fields[1] == perms[...] && fields[5] == path[...]
        } else if inMapping, fields.first == "Rss:", fields.count >= 2, let kb = Int(fields[1]) {
            total += kb
        }
    }
    return total
}

/// Issue 11: a worker's resident set is the code it keeps running. Once warmed up (100 requests) it
/// drops its page-table entries for code, so what start-up alone ran stops counting against it (and
/// against --reload-on-rss).
extension SWSGIIntegration {
    @Suite struct ResidentCode {
        @Test func aWarmedUpWorkerKeepsOnlyTheCodeItRuns() throws {
            try withServer(["--processes", "1"]) { s throws in
                let worker = s.waitWorkers(1)[0]
                let exe = try #require(try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(worker)/exe"))
                for _ in 0..<50 { #expect(try s.get("/").status == 200) }
                let cold = try #require(residentKiB(worker, path: exe, perms: "r-xp"))
                for _ in 0..<100 { #expect(try s.get("/").status == 200) }
                let warm = try #require(residentKiB(worker, path: exe, perms: "r-xp"))
                #expect(warm < cold, "the worker's resident code went from \(cold) kB (50 requests) to \(warm) kB (150)")
                #expect(try s.get("/").status == 200, "the worker serves on from code faulted back in")
            }
        }
    }
}
