import Foundation
import Glibc
import Testing

/// Writes `text` to the FIFO at `path` (non-blocking: the master holds it open for reading).
private func writeFifo(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { throw TestFailure("open \(path): errno \(errno)") }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard write(fd, bytes, bytes.count) == bytes.count else { throw TestFailure("write \(path): errno \(errno)") }
}

extension SWSGIIntegration {
    /// uWSGI's master-fifo (core/fifo.c): `echo w > FIFO` reloads the workers, `q` stops gracefully, an
    /// unknown letter is logged, and the FIFO is removed at exit.
    @Suite struct MasterFifoCommands {
        @Test func lettersReloadReportAndStop() throws {
            try withServer(["--processes", "2", "--ini", "{dir}/app.ini"], setup: { dir in
                try dir.write("app.ini", "[uwsgi]\nmaster-fifo = %dmaster.fifo\n")
            }) { s throws in
                let fifo = s.dir.file("master.fifo")
                var st = stat()
                #expect(lstat(fifo, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO && (st.st_mode & 0o777) == 0o600)
                let before = Set(s.waitWorkers(2))
                try writeFifo(fifo, "w\n")
                #expect(s.waitForLog("master-fifo: 'w': graceful reload of the workers"), "\(s.log)")
                let after = s.waitWorkers(2, where: { Set($0).isDisjoint(with: before) })
                #expect(Set(after).isDisjoint(with: before), "every worker replaced: \(before) -> \(after)")
                #expect(try s.get("/").status == 200)
                try writeFifo(fifo, "sX")
                #expect(s.waitForLog("master-fifo: 's': {"), "\(s.log)")
                #expect(s.waitForLog("'X' is not a master FIFO command"), "\(s.log)")
                // '-' and '+': one worker less, one more (up to --processes), as SIGTTOU and SIGTTIN.
                try writeFifo(fifo, "-")
                #expect(s.waitWorkers(1).count == 1)
                try writeFifo(fifo, "+")
                #expect(s.waitWorkers(2).count == 2)
                try writeFifo(fifo, "q")
                #expect(s.waitExit(timeout: 10) == 0, "\(s.log)")
                #expect(!fileExists(fifo), "the FIFO is removed at exit")
            }
        }

        /// A burst written at once is one instant, as pending signals are: thousands of the same letter make one
        /// reload and one log line, not a log line (and a reload decision) per byte.
        @Test func aBurstOfOneLetterIsOneCommand() throws {
            try withServer(["--processes", "1", "--master-fifo", "{dir}/master.fifo"]) { s throws in
                let fifo = s.dir.file("master.fifo")
                let before = Set(s.waitWorkers(1))
                try writeFifo(fifo, String(repeating: "r", count: 4000) + String(repeating: "X", count: 4000) + "+")
                #expect(s.waitForLog("'X' is not a master FIFO command"), "\(s.log)")
                let after = s.waitWorkers(1, where: { Set($0).isDisjoint(with: before) })
                #expect(Set(after).isDisjoint(with: before), "the worker was replaced: \(before) -> \(after)")
                let log = s.log
                let count = { (needle: String) in log.components(separatedBy: needle).count - 1 }
                #expect(count("'r': graceful reload") == 1, "one reload line for the burst")
                #expect(count("'X' is not a master FIFO command") == 1, "one line for the unknown byte")
            }
        }

        /// A FIFO another process still reads (an older generation, or a second server given the same path) is
        /// replaced as uWSGI replaces it, but not silently: that process gets no more commands.
        @Test func replacingAFifoSomeoneReadsIsSaid() throws {
            try withServer(["--processes", "1", "--master-fifo", "{dir}/master.fifo"]) { first throws in
                let second = try Server(["--processes", "1", "--master-fifo", first.dir.file("master.fifo")], dir: first.dir, socket: "second.sock", name: "second")
                defer { second.stop() }
                #expect(second.log.contains("--master-fifo \(first.dir.file("master.fifo")): another process was reading this FIFO"), "\(second.log)")
                #expect(!first.log.contains("another process was reading"), "the first found no FIFO there")
            }
        }

        @Test func aFileAtThePathIsRefusedAndKept() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("master.fifo", "keep me\n")
            let s = try Server(["--master-fifo", dir.file("master.fifo")], dir: dir, ready: false)
            defer { s.stop() }
            #expect(s.waitExit(timeout: 10) == 1)
            #expect(s.log.contains("--master-fifo \(dir.file("master.fifo")): something that is not a FIFO is there"), "\(s.log)")
            #expect((try? String(contentsOfFile: dir.file("master.fifo"), encoding: .utf8)) == "keep me\n")
        }
    }
}
