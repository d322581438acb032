import Foundation
import Glibc
import Testing

/// `--offload-threads` when the worker runs out of fds: a hand-over needs two duplicates (the socket and the
/// file). When they cannot be made, the head must not already be out with nothing behind it.
extension SWSGIIntegration.Offload {
    /// A worker with few fds, slow clients holding its offloaded transfers (two fds each) until a hand-over
    /// cannot duplicate: every client that got a 200 head must get the whole body, never a head and a close.
    @Test func aHandOverWithoutFDsLeftStillSendsTheWholeBody() throws {
        let port = try freeLocalPort()
        let dir = try TempDir()
        defer { dir.remove() }
        let big = try Self.files(dir)
        let server = try Server(["--processes", "1", "--offload-threads", "1", "--app", "static:{dir}/www",
                                 "--http-socket", "127.0.0.1:\(port)", "--write-timeout", "20"],
                                dir: dir, shell: "ulimit -n 40 && exec \"$0\" \"$@\"")
        defer { server.stop() }
        var clients: [Client] = []
        // Each offloaded transfer to a client that reads nothing keeps two fds of the worker's 40.
        for _ in 0..<30 {
            let slow = try slowClient(port: port)
            do { try slow.startDownload("/big.bin", timeout: 1) } catch { break }
            clients.append(slow)
        }
        #expect(clients.count >= 5, "only \(clients.count) downloads started:\n\(server.log)")
        for (i, slow) in clients.enumerated() {
            let (head, body) = try slow.finishDownload(length: big.count)
            #expect(head.hasPrefix("HTTP/1.1 200"), "client \(i): \(head)")
            #expect(body.count == big.count && body == big, "client \(i): \(body.count) of \(big.count) bytes:\n\(server.log)")
        }
        // The path under test was taken: a hand-over failed for want of fds (a client that gave up while
        // waiting may still end in a broken pipe, which is not what this checks).
        #expect(server.log.contains("not offloaded: fcntl(F_DUPFD_CLOEXEC)"), "\(server.log)")
        #expect(!server.log.contains("response not completed: fcntl"), "\(server.log)")
    }
}
