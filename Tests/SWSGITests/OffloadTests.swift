import Foundation
import Glibc
import Testing

/// `--offload-threads` (uWSGI's offload subsystem, core/offload.c): a static file's body goes to an offload
/// thread once its head is out, so a slow client no longer holds the only worker.
extension SWSGIIntegration {
    @Suite struct Offload {
        /// Bytes of the big file: far more than the kernel buffers between the worker and a client reading nothing.
        static let bigBytes = 8 << 20

        /// The file `www/big.bin` (random bytes), a small one, and the bytes of the big one.
        static func files(_ dir: TempDir) throws -> [UInt8] {
            try FileManager.default.createDirectory(atPath: dir.file("www"), withIntermediateDirectories: true)
            var generator = SplitMix64(seed: 20)
            var big = [UInt8](repeating: 0, count: bigBytes)
            for i in stride(from: 0, to: bigBytes, by: 8) {
                let v = generator.next()
                for j in 0..<8 { big[i + j] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(j))) }
            }
            try dir.write("www/big.bin", bytes: big)
            try dir.write("www/small.txt", "small\n")
            return big
        }

        /// The slow client's request, its response head arrived (the worker has started on the body).
        static func startSlowDownload(port: UInt16) throws -> Client {
            let slow = try slowClient(port: port)
            try slow.startDownload("/big.bin")
            return slow
        }

        /// Reads the rest of the slow client's response at full speed and checks it byte for byte.
        static func finishDownload(_ slow: Client, expect big: [UInt8]) throws {
            let (head, body) = try slow.finishDownload(length: big.count)
            #expect(head.hasPrefix("HTTP/1.1 200"), "\(head)")
            #expect(head.contains("Content-Length: \(big.count)"), "\(head)")
            #expect(body.count == big.count && body == big, "\(body.count) of \(big.count) bytes, or different bytes")
        }

        /// The proof: with one worker, a client reading a big static file slowly, and a second request. With
        /// offload threads the second is answered at once and the slow client still gets every byte; without,
        /// the second waits until the slow client has the file.
        @Test(arguments: [true, false])
        func aSlowClientHoldsTheWorkerOnlyWithoutOffloadThreads(offload: Bool) throws {
            let port = try freeLocalPort()
            var big: [UInt8] = []
            try withServer(["--processes", "1", "--app", "static:{dir}/www", "--http-socket", "127.0.0.1:\(port)"]
                           + (offload ? ["--offload-threads", "1"] : []),
                           setup: { big = try Self.files($0) }) { s throws in
                let slow = try Self.startSlowDownload(port: port)
                let second = try Client(.tcp(port: port))
                let askedAt = monotonicSeconds()
                try second.send("GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                // The slow client sips 4 KiB every 10 ms while the second request waits for its answer (up to 1.5 s).
                var answeredAfter: Double? = nil
                while monotonicSeconds() - askedAt < 1.5 {
                    slow.sip(bytes: 4096, milliseconds: 0)
                    _ = second.fill(until: monotonicSeconds() + 0.01)
                    if second.buffer.firstRange(of: Array("small\n".utf8)) != nil { answeredAfter = monotonicSeconds() - askedAt; break }
                }
                if offload {
                    let after = try #require(answeredAfter, "the second request was not answered within 1.5 s while the slow client read")
                    #expect(after < 1.0, "answered after \(after) s")
                    #expect(slow.buffer.count < Self.bigBytes / 2, "the slow client read \(slow.buffer.count) bytes already: not slow enough to prove anything")
                } else {
                    #expect(answeredAfter == nil, "answered after \(answeredAfter ?? 0) s although the only worker was sending the file")
                }
                try Self.finishDownload(slow, expect: big)
                if !offload {
                    // Once the slow client has the file, the worker answers the second request.
                    let reply = try second.readResponse(timeout: 5)
                    #expect(reply.text == "small\n")
                }
                let bigLine = s.logLines.first { $0.contains("GET /big.bin 200") }
                #expect(bigLine?.contains("\(Self.bigBytes)B") == true, "\(s.log)")
            }
        }

        /// The offloaded response closes its connection (the offload thread takes the socket over, as uWSGI's):
        /// its head says so, and the connection ends after the body. A HEAD request is not offloaded: it keeps
        /// its connection.
        @Test func anOffloadedResponseClosesItsConnectionAndHeadKeepsIt() throws {
            var big: [UInt8] = []
            try withServer(["--processes", "1", "--app", "static:{dir}/www", "--offload-threads", "2"], setup: { big = try Self.files($0) }) { s throws in
                let c = try s.connect()
                try c.send("HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
                let head = try c.readResponse(timeout: 5, headRequest: true)
                #expect(head.status == 200 && head.header("Content-Length") == "\(big.count)" && head.keepAlive)
                try c.send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
                let reply = try c.readResponse(timeout: 10)
                #expect(reply.status == 200 && reply.body == big && reply.header("Connection") == "close")
                #expect(c.closesWithoutData(timeout: 5), "the connection stayed open after the offloaded body")
                // A range goes the same way: the bytes asked for, from their offset.
                let r = try s.get("/big.bin", headers: ["Range: bytes=1000000-2999999"])
                #expect(r.status == 206 && r.body == Array(big[1_000_000..<3_000_000]))
            }
        }

        /// A client that goes away mid-transfer, and one that stops reading (`--write-timeout`, uWSGI's
        /// socket-timeout): each transfer is cut with a line naming why, and the worker's fd count comes back.
        @Test func aClientGoneOrStalledIsCutAndLeaksNothing() throws {
            let port = try freeLocalPort()
            try withServer(["--processes", "1", "--app", "static:{dir}/www", "--http-socket", "127.0.0.1:\(port)",
                            "--offload-threads", "1", "--write-timeout", "1"], setup: { _ = try Self.files($0) }) { s throws in
                let worker = try #require(s.waitWorkers(1).first)
                // A connection the worker closed itself (its EOF seen here): nothing of it is left in the count.
                let first = try s.connect()
                try first.send("GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                #expect(String(decoding: try first.readToEnd(timeout: 5), as: UTF8.self).hasSuffix("small\n"))
                let baseline = try #require(openFDCount(worker))
                // Gone: the client resets the connection after the first bytes.
                let gone = try Self.startSlowDownload(port: port)
                var noLinger = linger(l_onoff: 1, l_linger: 0)
                setsockopt(gone.fd, SOL_SOCKET, SO_LINGER, &noLinger, socklen_t(MemoryLayout<linger>.size))
                gone.close()
                #expect(s.waitForLog("offloaded response to GET /big.bin cut after", timeout: 5), "\(s.log)")
                #expect(s.log.contains("the client is gone: sendfile: Connection reset by peer")
                        || s.log.contains("the client is gone: sendfile: Broken pipe") || s.log.contains("the client hung up"), "\(s.log)")
                try waitUntil(5, "fd count back to \(baseline): \(openFDs(worker) ?? [])") { openFDCount(worker) == baseline }
                // Stalled: the client reads nothing; cut after --write-timeout (1 s) without progress.
                let stalled = try Self.startSlowDownload(port: port)
                let since = monotonicSeconds()
                // Meanwhile the offload thread holds its own fds of the file and the socket: close-on-exec, as its epoll's.
                let inheritable = Self.inheritableOffloadFDs(worker)
                #expect(inheritable.isEmpty, "fds of the worker without O_CLOEXEC: \(inheritable)")
                #expect(s.waitForLog("the client read nothing for 1.0 s", timeout: 5), "\(s.log)")
                let took = monotonicSeconds() - since
                #expect(took > 0.8 && took < 4, "cut after \(took) s")
                try waitUntil(5, "fd count back to \(baseline): \(openFDs(worker) ?? [])") { openFDCount(worker) == baseline }
                stalled.close()
                // The worker still serves.
                #expect(try s.get("/small.txt").text == "small\n")
                // Idle, the worker's threads (its loop and the offload thread) do not wake.
                usleep(200_000)
                let before = Self.wakeUps(worker)
                usleep(1_000_000)
                let woke = Self.wakeUps(worker) - before
                #expect(woke < 5, "the idle worker's threads woke \(woke) times in 1 s")
            }
        }

        /// The fds of `pid` on the big file, sockets and epoll instances that lack O_CLOEXEC (/proc/PID/fdinfo's flags, octal).
        static func inheritableOffloadFDs(_ pid: Int32) -> [String] {
            var found: [String] = []
            for fd in openFDs(pid) ?? [] {
                let target = fdTarget(pid, fd) ?? ""
                guard target.hasSuffix("/big.bin") || target == "anon_inode:[eventpoll]" || target.hasPrefix("socket:") else { continue }
                let info = readProcFile("/proc/\(pid)/fdinfo/\(fd)") ?? ""
                for line in info.split(separator: "\n") where line.hasPrefix("flags:") {
                    let flags = Int(String(line.dropFirst(6)).trimmingCharacters(in: .whitespaces), radix: 8) ?? 0
                    if flags & 0o2000000 == 0 { found.append("\(fd) \(target)") }
                }
            }
            return found
        }

        /// Voluntary context switches of every thread of `pid` so far.
        static func wakeUps(_ pid: Int32) -> Int {
            var total = 0
            for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
                total += contextSwitches(Int32(task) ?? -1) ?? 0
            }
            return total
        }

        /// A graceful stop (SIGTERM) waits for an offloaded transfer: the client that reads gets every byte and
        /// the master exits 0; a client that never reads is cut at the worker's mercy, with a line saying so.
        @Test func termWaitsForAnOffloadedTransferUpToTheMercy() throws {
            let port = try freeLocalPort()
            let dir = try TempDir()
            defer { dir.remove() }
            let big = try Self.files(dir)
            let args = ["--processes", "1", "--app", "static:{dir}/www", "--http-socket", "127.0.0.1:\(port)", "--offload-threads", "1",
                        "--worker-reload-mercy", "3"]
            do {
                let s = try Server(args, dir: dir)
                defer { s.stop() }
                let slow = try Self.startSlowDownload(port: port)
                s.signal(SIGTERM)
                // The worker waits for the transfer: the master is still there a moment later.
                #expect(s.waitExit(timeout: 0.5) == nil, "the master exited while an offloaded transfer was under way")
                try Self.finishDownload(slow, expect: big)
                #expect(s.waitExit(timeout: 5) == 0, "\(s.log)")
            }
            do {
                let s = try Server(args, dir: dir, name: "swsgi2")
                defer { s.stop() }
                let stalled = try Self.startSlowDownload(port: port)
                let since = monotonicSeconds()
                s.signal(SIGTERM)
                #expect(s.waitExit(timeout: 8) != nil, "\(s.log)")
                let took = monotonicSeconds() - since
                #expect(took > 2 && took < 5, "the stop took \(took) s with a --worker-reload-mercy of 3 s")
                #expect(s.log.contains("offloaded response to GET /big.bin cut after") && s.log.contains("worker-reload-mercy ran out"), "\(s.log)")
                stalled.close()
            }
        }
    }
}

