import Foundation
import Glibc
import Testing

/// A worker that will be recycled after this response (`--max-requests` reached) knows it before the head goes
/// out: the head says `Connection: close`, so a client does not send its next request (a POST perhaps) on a
/// connection about to end (found by an attack: response 2 of `--max-requests 2` kept the connection, the third
/// request was read and dropped; gunicorn says close).
extension SWSGIIntegration.Processes {
    @Test(arguments: [1, 2]) func theLastResponseBeforeMaxRequestsSaysClose(threads: Int) throws {
        try withServer(["--processes", "1", "--threads", "\(threads)", "--max-requests", "2"]) { s throws in
            let c = try s.connect()
            defer { c.close() }
            try c.send(httpGet("/"))
            let first = try c.readResponse()
            #expect(first.status == 200)
            #expect(first.header("Connection")?.lowercased() != "close", "the first of two may keep the connection")
            try c.send(httpGet("/"))
            let second = try c.readResponse()
            #expect(second.status == 200)
            #expect(second.header("Connection")?.lowercased() == "close", "the second reaches --max-requests 2: \(second.headers)")
        }
    }

}
