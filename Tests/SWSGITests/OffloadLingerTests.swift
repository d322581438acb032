import Foundation
import Glibc
import Testing

/// `--offload-threads`: the transfer ends the connection, and a socket closed with unread input is reset,
/// which throws away what the client has not read yet. A keep-alive client that pipelined its next request
/// behind an offloaded one must still get every byte of the first response.
extension SWSGIIntegration.Offload {
    @Test func aPipelinedRequestBehindAnOffloadedOneDoesNotResetIt() throws {
        let port = try freeLocalPort()
        var big: [UInt8] = []
        try withServer(["--processes", "1", "--offload-threads", "1", "--app", "static:{dir}/www",
                        "--http-socket", "127.0.0.1:\(port)"],
                       setup: { big = try Self.files($0) }) { s throws in
            let slow = try Self.startSlowDownload(port: port)
            // The next request arrives once the transfer runs: unread input on the socket the thread closes.
            try slow.send("GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            // Reads slowly until the transfer has pushed its last bytes into the kernel's buffers.
            #expect(waitUntil(10) { slow.sip(bytes: 65536, milliseconds: 1); return s.log.contains("GET /big.bin 200") })
            let until = monotonicSeconds() + 0.3
            while monotonicSeconds() < until { slow.sip(bytes: 4096, milliseconds: 1) }
            try Self.finishDownload(slow, expect: big)
        }
    }
}
