import Foundation
import Glibc
import Testing
import TestSupport

/// The shared helpers themselves: each promise other tests lean on, tried for real.
@Suite(.serialized) struct TestSupportTests {
    @Test func tempDirLeavesRoomForSocketPaths() throws {
        let dir = try TempDir()
        let sock = dir.file(String(repeating: "s", count: 80))
        #expect(sock.utf8.count <= 107, "\(sock) does not fit sun_path")
        try dir.write("a/b.sh", "#!/bin/sh\n", executable: true)
        #expect(access(dir.file("a/b.sh"), X_OK) == 0)
        #expect(dir.read("a/b.sh") == "#!/bin/sh\n" && dir.read("missing") == "" && dir.readIfExists("missing") == nil)
        dir.remove()
        #expect(!fileExists(dir.path))
    }

    @Test func waitingFailsByItsDeadlineNamingWhatItWaitedFor() {
        let start = monotonicSeconds()
        #expect(throws: TestFailure.self) { try waitUntil(0.05, "the impossible") { false } }
        #expect(monotonicSeconds() - start < 2)
        do { try waitUntil(0.01, "the impossible") { false } } catch {
            #expect("\(error)".contains("the impossible"))
        }
        #expect(waitUntil(1) { true })
    }

    @Test func missingToolNamesTheInstallCommand() throws {
        do {
            _ = try requireTool("hwt-no-such-tool")
            Issue.record("a missing tool was found")
        } catch {
            #expect("\(error)".contains("apt-get install -y hwt-no-such-tool") && "\(error)".contains("Tests/run"))
        }
        for name in ["nginx", "gunicorn", "uwsgi", "runsvdir", "s6-svscan", "supervisord"] {
            #expect(installCommands[name] != nil, "no install command for \(name)")
        }
    }

    @Test func childIsReapedWithItsShellCodeAndGetsOnlyFd3() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let exits = try Child(["/bin/sh", "-c", "exit 7"], output: dir.file("out"), environment: testEnvironment())
        #expect(exits.waitExit(timeout: 10) == 7)
        let listener = try makeListener(dir.file("l.sock"))
        defer { close(listener) }
        let sleeper = try Child(["/bin/sleep", "100"], output: dir.file("out"), environment: testEnvironment(), fd3: listener)
        try waitUntil(5, "the child's fds to be 0-3, are \(openFDs(sleeper.pid) ?? [])") { openFDs(sleeper.pid) == [0, 1, 2, 3] }
        #expect(sleeper.stop(timeout: 10) == 128 + SIGTERM)
        #expect(!isAlive(sleeper.pid))
        sleeper.signal(SIGKILL)  // reaped: must not be signalled again (it does nothing)
    }

    /// Serves one connection on `listener`: reads the request, then answers `answer` (nil: closes without one).
    func serveOnce(_ listener: Int32, _ answer: String?) {
        Thread {
            let c = acceptConnection(listener)
            guard c >= 0 else { return }
            // Read the request first, answer or not: closing before the client wrote would race its write (EPIPE).
            var buf = [UInt8](repeating: 0, count: 4096)
            _ = buf.withUnsafeMutableBytes { read(c, $0.baseAddress, $0.count) }
            if let answer { _ = answer.withCString { send(c, $0, strlen($0), Int32(MSG_NOSIGNAL)) } }
            close(c)
        }.start()
    }

    @Test func clientsReadAnswersAndTellHowAConnectionEnded() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let path = dir.file("h.sock")
        let listener = try makeListener(path)
        defer { close(listener) }
        serveOnce(listener, "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n4242\n")
        let r = try unixGet(path).get()
        #expect(r.status == 200 && r.body == "4242")
        serveOnce(listener, nil)
        #expect(throws: HTTPClientError.closedBeforeResponse) { try request(path, "/") }
        serveOnce(listener, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        let c = try Client(path: path)
        try c.send(httpGet("/"))
        let reply = try c.readResponse(timeout: 5)
        #expect(reply.text == "abc" && reply.keepAlive)
        guard case .failure(let e) = unixGet(dir.file("nobody.sock")) else {
            Issue.record("a GET to a path nobody binds succeeded")
            return
        }
        #expect(e == ClientError(stage: "connect", errno: ENOENT))
        #expect(unixGetFailure(dir.file("nobody.sock"))?.contains("connect") == true)
    }
}
