import Foundation
import Glibc
import Testing

/// A connection the server ends (after a `Connection: close` answer, or idle once its worker retires) can still
/// get input after the server's close: a request the client pipelines once the response has started arriving.
/// The kernel answers input on a closed socket with a reset, which destroys the response bytes still in the
/// server's buffers for a client that reads slowly (attack: 5 of 6 connections let go by the excess rule cut,
/// 551 of 955 `--max-requests 5` answers). Dropping the input that had arrived before the close
/// (`CloseWithUnreadInputTests`) cannot help with this: the server shuts its sending side down instead and reads
/// and drops what comes until the client closes (nginx's lingering close, RFC 9112 §9.6).
extension SWSGIIntegration.Offload {
    /// The slow client's download, read until the server has ended its side of the connection: its FIN waits
    /// behind response bytes still in its send queue.
    static func readUntilServerEnds(_ slow: Client, port: UInt16, _ s: Server) -> Bool {
        var end: (state: String, sendQueue: Int)?
        // Through a tiny receive window the download takes a while on a loaded machine (once: ESTABLISHED with 2 MB
        // queued after 20 s); the server's end is looked at every 20 reads (/proc/net/tcp costs more than a read).
        let ended = waitUntil(40) {
            for _ in 0..<20 { slow.sip(bytes: 65536, milliseconds: 1) }
            end = slow.serverEnd(serverPort: port)
            return end?.state == "FIN_WAIT1"
        }
        #expect(ended, "the server's end of the connection: \(String(describing: end))\n\(s.log)")
        #expect((end?.sendQueue ?? 0) > 0, "no response byte left in the server's buffers: the test proves nothing")
        return ended
    }

    @Test(arguments: [1, 2], [false, true])
    func aRequestArrivingAfterTheServerEndedTheConnectionDoesNotResetIt(threads: Int, retiring: Bool) throws {
        let port = try freeLocalPort()
        var big: [UInt8] = []
        try withServer(["--processes", "1", "--threads", "\(threads)", "--app", "static:{dir}/www",
                        "--http-socket", "127.0.0.1:\(port)"] + (retiring ? ["--max-requests", "1"] : []),
                       setup: { big = try Self.files($0) }) { s throws in
            let worker = try #require(s.waitWorkers(1).first)
            let slow = try slowClient(port: port)
            // The client asks for the close; or the worker retires after its one request and, at the end of its
            // grace, closes the connection, idle by then.
            try slow.startDownload("/big.bin", fields: retiring ? "" : "Connection: close\r\n")
            guard Self.readUntilServerEnds(slow, port: port, s) else { return }
            // The next request arrives after the server's close (or shutdown).
            try slow.send("GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            try Self.finishDownload(slow, expect: big)
            if retiring {
                // The retiring worker waited for the connection, and leaves as soon as the client has closed it.
                slow.close()
                #expect(waitUntil(3) { !s.workers.contains(worker) }, "the retiring worker is still there 3 s after its last client closed")
            }
        }
    }

    /// A client that neither reads nor closes holds a retiring worker until the lingering deadline (5 s), no longer.
    @Test(arguments: [1, 2]) func aRetiringWorkerWaitsForALingeringClientOnlyUntilTheDeadline(threads: Int) throws {
        let port = try freeLocalPort()
        try withServer(["--processes", "1", "--threads", "\(threads)", "--app", "static:{dir}/www",
                        "--http-socket", "127.0.0.1:\(port)", "--max-requests", "1"],
                       setup: { _ = try Self.files($0) }) { s throws in
            let worker = try #require(s.waitWorkers(1).first)
            let slow = try slowClient(port: port)
            try slow.startDownload("/big.bin")
            guard Self.readUntilServerEnds(slow, port: port, s) else { return }
            let endedAt = monotonicSeconds()
            #expect(waitUntil(15) { !s.workers.contains(worker) }, "the retiring worker is still there:\n\(s.log)")
            let waited = monotonicSeconds() - endedAt
            #expect(waited > 3.5 && waited < 10, "the worker left \(waited) s after it ended the connection")
            #expect(!s.log.contains("SIGKILL"), "\(s.log)")
        }
    }
}
