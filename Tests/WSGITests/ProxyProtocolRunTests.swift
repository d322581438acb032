import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    /// `enable-proxy-protocol` / `http-enable-proxy-protocol`: the client a load balancer's PROXY header names is
    /// the app's REMOTE_ADDR/REMOTE_PORT; a connection without a valid header is closed unanswered.
    @Suite struct ProxyProtocolRun {
        @Test func theHeaderNamesTheClientAndItsAbsenceClosesTheConnection() throws {
            let port = try freeLocalPort()
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--ini", "{dir}/app.ini"], socket: nil, setUp: { dir in
                let env = try writeProbe(dir)
                try dir.write("app.ini", "[uwsgi]\nhttp = 127.0.0.1:\(port)\nsocket = \(dir.file("u.sock"))\nhttp-enable-proxy-protocol = true\n")
                return env
            }) { s, dir throws in
                func environ(_ c: Client) throws -> [String: Any] {
                    let r = try c.readResponse(timeout: 5)
                    #expect(r.status == 200, "\(r.status) \(r.text)")
                    return try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
                }
                // v1, sent in two pieces (the header split), then two requests on the same connection.
                let c = try Client(.tcp(port: port))
                try c.send("PROXY TCP4 192.0.2.7 127.0.0.1 56324 \(port)\r\nGET /envi")
                usleep(50_000)
                try c.send("ron HTTP/1.1\r\nHost: t\r\n\r\n")
                let first = try environ(c)
                #expect(first["REMOTE_ADDR"] as? String == "192.0.2.7" && first["REMOTE_PORT"] as? String == "56324", "\(first)")
                try c.send("GET /environ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                #expect(try environ(c)["REMOTE_ADDR"] as? String == "192.0.2.7", "the header names the client for the whole connection")
                // v2 (AWS NLB, haproxy send-proxy-v2), TCP over IPv4.
                let v2 = try Client(.tcp(port: port))
                try v2.send([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C,
                             198, 51, 100, 9, 127, 0, 0, 1, 0x1F, 0x90, UInt8(port >> 8), UInt8(port & 0xff)]
                            + Array("GET /environ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8))
                let second = try environ(v2)
                #expect(second["REMOTE_ADDR"] as? String == "198.51.100.9" && second["REMOTE_PORT"] as? String == "8080", "\(second)")
                // No header: closed without an answer (a client reaching the port directly cannot name its own address).
                let bare = try Client(.tcp(port: port))
                try bare.send("GET /environ HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(bare.closesWithoutData(timeout: 5))
                #expect(s.waitForLog("no PROXY protocol header"), "\(s.log)")
                // The uwsgi listener (nginx's uwsgi_pass) carries its own REMOTE_ADDR: no PROXY header there.
                let u = try Client(.unix(dir.file("u.sock")))
                try u.send(uwsgiEnvironGet())
                #expect(try u.readResponse(timeout: 5).status == 200)
            }
        }
    }
}

private func uwsgiEnvironGet() -> [UInt8] {
    var block: [UInt8] = []
    for (k, v) in [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/environ"), ("REQUEST_URI", "/environ"), ("SERVER_PROTOCOL", "HTTP/1.1"),
                   ("SERVER_NAME", "t"), ("SERVER_PORT", "80"), ("REMOTE_ADDR", "10.1.1.1")] {
        let kb = Array(k.utf8), vb = Array(v.utf8)
        block += [UInt8(kb.count & 0xff), UInt8(kb.count >> 8)] + kb + [UInt8(vb.count & 0xff), UInt8(vb.count >> 8)] + vb
    }
    return [0, UInt8(block.count & 0xff), UInt8(block.count >> 8), 0] + block
}
