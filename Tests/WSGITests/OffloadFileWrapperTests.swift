import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    /// `--offload-threads` with a Python app: a `wsgi.file_wrapper` response over a real file is what uWSGI
    /// offloads (uwsgi_response_sendfile_do from the python plugin), here in the threads mode.
    @Suite struct OffloadFileWrapper {
        /// One worker with two request threads: two clients reading an 8 MiB file_wrapper response slowly would
        /// hold both threads; with an offload thread each is free once its head is out, so a third request is
        /// answered at once, and both slow clients still get every byte.
        @Test func fileWrapperBodiesAreOffloadedInTheThreadsMode() throws {
            let port = try freeLocalPort()
            var data = [UInt8](repeating: 0, count: 8 << 20)
            try withPython(["--processes", "1", "--threads", "2", "--offload-threads", "1", "--wsgi-file", "{dir}/probe.py",
                            "--http-socket", "127.0.0.1:\(port)"],
                           setUp: { dir in
                               let env = try writeProbe(dir)
                               for i in data.indices { data[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 13) }
                               try dir.write("data.bin", bytes: data)
                               return env
                           }) { s, _ throws in
                let slow = try [slowClient(port: port), slowClient(port: port)]
                for c in slow { try c.startDownload("/file") }
                let askedAt = monotonicSeconds()
                let third = try Client(.tcp(port: port))
                try third.send("GET /write HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                var answeredAfter: Double? = nil
                while monotonicSeconds() - askedAt < 3 {
                    // 4 KiB each per 10 ms (the wait for the third's answer paces them): slow readers.
                    for c in slow { c.sip(bytes: 4096, milliseconds: 0) }
                    _ = third.fill(until: monotonicSeconds() + 0.01)
                    if third.buffer.firstRange(of: Array("returned\n".utf8)) != nil { answeredAfter = monotonicSeconds() - askedAt; break }
                }
                let after = try #require(answeredAfter, "a third request was not answered while two clients read slowly")
                #expect(after < 1.5, "answered after \(after) s")
                for c in slow {
                    let (head, body) = try c.finishDownload(length: data.count)
                    #expect(head.hasPrefix("HTTP/1.1 200") && head.contains("Connection: close"), "\(head)")
                    #expect(body == data, "\(body.count) of \(data.count) bytes, or different bytes")
                }
                #expect(s.logLines.filter { $0.contains("GET /file 200 \(data.count)B") }.count == 2, "\(s.log)")
            }
        }
    }
}
