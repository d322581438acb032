import Foundation
import Glibc
import Testing

/// Failures collected from several threads.
final class FailureLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}

/// Sends `count` requests for `path` from `clients` threads, each on a new connection; the failures.
func hammer(_ s: Server, path: String, clients: Int, count: Int) -> [String] {
    let socket = s.socket!
    let failures = FailureLog()
    DispatchQueue.concurrentPerform(iterations: clients) { _ in
        for _ in 0..<count {
            do {
                let c = try Client(.unix(socket))
                try c.send(httpGet(path))
                let r = try c.readResponse(timeout: 20)
                if r.status != 200 { failures.add("status \(r.status)") }
            } catch {
                failures.add("\(error)")
            }
        }
    }
    return failures.all
}

extension WSGIIntegration {
    @Suite struct Workers {
        @Test func harakiriGracefulSignalRunsThePythonHandlerBeforeSIGKILL() throws {
            let args = ["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--harakiri", "1",
                        "--harakiri-graceful-signal", "SIGSYS", "--harakiri-graceful-timeout", "2"]
            try withPython(args) { s, dir throws in
                for (round, path) in ["/sleep", "/busy"].enumerated() {
                    let worker = try #require(s.waitWorkers(1).first)
                    let c = try s.connect()
                    try c.send(httpGet(path))
                    #expect(waitUntil(10) { (try? String(contentsOfFile: dir.file("markers/graceful"), encoding: .utf8))?
                        .split(separator: "\n").count == round + 1 }, "the app's signal.signal handler ran (\(path))")
                    let line = (try? String(contentsOfFile: dir.file("markers/graceful"), encoding: .utf8))?
                        .split(separator: "\n").last.map(String.init) ?? ""
                    #expect(line == "\(SIGSYS) \(worker)", "the handler ran in the harakiri'd worker: \(line)")
                    // The request unwinds (HarakiriInterrupt after the handler): its client gets a 500.
                    #expect(try c.readResponse(timeout: 10).status == 500)
                    #expect(waitUntil(10) { !isAlive(worker) }, "SIGKILL follows the grace period")
                    #expect(s.waitForLog("HARAKIRI worker", count: round + 1))
                    #expect(try s.get("/").status == 200, "a new worker serves")
                }
            }
        }

        @Test func harakiriGracefulSignalUnwindsTheRequestAndClosesTheIterable() throws {
            let args = ["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--harakiri", "1",
                        "--harakiri-graceful-signal", "SIGSYS", "--harakiri-graceful-timeout", "3"]
            try withPython(args) { s, dir throws in
                let worker = try #require(s.waitWorkers(1).first)
                let c = try s.connect()
                try c.send(httpGet("/harakiri-stream"))
                #expect(waitUntil(10) { markerExists(dir, "graceful") }, "the app's handler ran first")
                #expect(waitUntil(10) { markerExists(dir, "closed-harakiri") }, "then close() ran as the request unwound")
                #expect(s.waitForLog("HarakiriInterrupt: request stopped by harakiri"))
                #expect(waitUntil(10) { !isAlive(worker) })
                #expect(try s.get("/").status == 200)
                // A signal that reaches an idle worker runs the app's handler before the next request,
                // and interrupts nothing.
                let next = try #require(s.waitWorkers(1).first)
                kill(next, SIGSYS)
                let r = try s.get("/pid")
                #expect(r.status == 200 && r.text == String(next), "the next request is served: \(r.status) \(r.text)")
                #expect(((try? String(contentsOfFile: dir.file("markers/graceful"), encoding: .utf8)) ?? "")
                    .split(separator: "\n").count == 2, "the handler ran once more")
            }
        }

        @Test func maxRequestsAndReloadOnRSSRecycleALeakingAppWithoutAFailedRequest() throws {
            try withPython(["--processes", "2", "--wsgi-file", "{dir}/probe.py", "--max-requests", "25"]) { s, _ throws in
                let failures = hammer(s, path: "/leak", clients: 4, count: 40)
                #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(3))")
                #expect(s.log.components(separatedBy: "max-requests").count - 1 >= 4, "workers were recycled: \(s.log)")
            }
            try withPython(["--processes", "2", "--wsgi-file", "{dir}/probe.py", "--reload-on-rss", "60"]) { s, _ throws in
                let failures = hammer(s, path: "/leak", clients: 4, count: 50)
                #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(3))")
                #expect(s.log.contains("reload-on-rss"), "workers were recycled for RSS: \(s.log)")
                for w in s.waitWorkers(2) { #expect((memoryOf(w) ?? 0) < 200 << 20) }
            }
        }

        @Test func aLargeUploadIsStreamedNotBuffered() throws {
            // 256 MiB: the 1 MiB --limit-post default is lifted for this test.
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--limit-post", "0"]) { s, _ throws in
                let worker = try #require(s.waitWorkers(1).first)
                let warm = try post(s, "/upload", body: [UInt8](repeating: 7, count: 1 << 20))
                #expect(warm.text == String(1 << 20))
                let before = try #require(memoryOf(worker, "VmHWM"))
                let size = 256 << 20
                let c = try s.connect()
                try c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: \(size)\r\n\r\n")
                let piece = [UInt8](repeating: 42, count: 1 << 20)
                for _ in 0..<(size >> 20) { try c.send(piece) }
                #expect(try c.readResponse(timeout: 60).text == String(size))
                let after = try #require(memoryOf(worker, "VmHWM"))
                #expect(after - before < 16 << 20, "peak RSS grew by \((after - before) >> 20) MiB for a \(size >> 20) MiB upload")
            }
        }

        @Test func requestsDoNotLeakInTheWorker() throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--disable-logging"]) { s, _ throws in
                let worker = try #require(s.waitWorkers(1).first)
                let c = try s.connect()
                func round(_ n: Int) throws {
                    for i in 0..<n {
                        for path in ["/environ/x?y=\(i)", "/stream", "/write", "/file?\(i)"] {
                            try c.send(httpGet(path, headers: ["X-Request: \(i)", "Cookie: a=\(i)"]))
                            _ = try c.readResponse()
                        }
                        _ = try post(s, "/lines", body: Array("a\nb\n".utf8))
                    }
                }
                try round(300)
                let before = try #require(memoryOf(worker))
                try round(1500)
                let after = try #require(memoryOf(worker))
                #expect(after - before < 2 << 20, "RSS grew by \((after - before) >> 10) KiB over 7500 requests")
            }
        }
    }
}
