import Foundation
import Glibc
import Testing
import TestSupport

/// The environ template keeps the values that usually repeat (method, protocol, server name and port, peer address,
/// Host) from one request to the next, so a request with the same ones sets nothing. What one request had must never
/// show in the next one's environ: requests alternate here between a TCP and a Unix socket (no peer address), with
/// and without a Host field (HTTP/1.0), with and without a query, other methods and hosts, on one worker.
extension WSGIIntegration {
    @Suite struct EnvironTemplate {
        @Test func nothingOfOneRequestShowsInTheNextOnesEnviron() throws {
            let port = try freeLocalPort()
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--http-socket", "127.0.0.1:\(port)"]) { s, dir throws in
                func environ(_ endpoint: Endpoint, _ head: String) throws -> [String: Any] {
                    let c = try Client(endpoint)
                    try c.send(head)
                    let r = try c.readResponse(timeout: 10)
                    #expect(r.status == 200, "\(head): \(r.status)")
                    return try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
                }
                let tcp = Endpoint.tcp(port: port), unix = Endpoint.unix(dir.file("s"))
                for round in 0..<3 {
                    var e = try environ(tcp, "GET /environ?a=\(round) HTTP/1.1\r\nHost: one.example:81\r\n\r\n")
                    #expect(e["REQUEST_METHOD"] as? String == "GET")
                    #expect(e["QUERY_STRING"] as? String == "a=\(round)")
                    #expect(e["HTTP_HOST"] as? String == "one.example:81")
                    #expect(e["SERVER_NAME"] as? String == "one.example" && e["SERVER_PORT"] as? String == "81")
                    #expect(e["REMOTE_ADDR"] as? String == "127.0.0.1" && e["REMOTE_PORT"] != nil)
                    #expect(e["SERVER_PROTOCOL"] as? String == "HTTP/1.1")

                    // Unix socket, HTTP/1.0 without Host: no peer address, no HTTP_HOST, no query.
                    e = try environ(unix, "DELETE /environ HTTP/1.0\r\n\r\n")
                    #expect(e["REQUEST_METHOD"] as? String == "DELETE")
                    #expect(e["QUERY_STRING"] as? String == "")
                    #expect(e["HTTP_HOST"] == nil, "\(e)")
                    #expect(e["REMOTE_ADDR"] == nil && e["REMOTE_PORT"] == nil, "\(e)")
                    #expect(e["SERVER_NAME"] as? String != "one.example", "\(e)")
                    #expect(e["SERVER_PROTOCOL"] as? String == "HTTP/1.0")
                    #expect(e["PATH_INFO"] as? String == "/environ" && e["REQUEST_URI"] as? String == "/environ")

                    // TCP again, HTTP/1.0 without Host: the peer is back, Host still absent.
                    e = try environ(tcp, "GET /environ HTTP/1.0\r\n\r\n")
                    #expect(e["HTTP_HOST"] == nil, "\(e)")
                    #expect(e["REMOTE_ADDR"] as? String == "127.0.0.1")
                    #expect(e["SERVER_NAME"] as? String != "one.example", "\(e)")

                    // Another Host and method on the Unix socket.
                    e = try environ(unix, "POST /environ HTTP/1.1\r\nHost: two.example\r\nContent-Length: 0\r\n\r\n")
                    #expect(e["REQUEST_METHOD"] as? String == "POST")
                    #expect(e["HTTP_HOST"] as? String == "two.example")
                    #expect(e["SERVER_NAME"] as? String == "two.example")
                    #expect(e["REMOTE_ADDR"] == nil, "\(e)")
                }
                // PATH_INFO and REQUEST_URI of repeated, decoded, long and absolute-form targets: a path seen
                // before (from the cache) with another query, and a decoded path after its plain spelling.
                let long = "/environ/" + String(repeating: "x", count: 200)
                let cases: [(target: String, pathInfo: String, uri: String)] = [
                    ("/environ/a", "/environ/a", "/environ/a"),
                    ("/environ/a?q=1", "/environ/a", "/environ/a?q=1"),
                    ("/environ/a", "/environ/a", "/environ/a"),
                    ("/environ/%61", "/environ/a", "/environ/%61"),
                    ("/environ/a", "/environ/a", "/environ/a"),
                    ("http://h.example/environ/b", "/environ/b", "/environ/b"),
                    ("/environ/b", "/environ/b", "/environ/b"),
                    (long, long, long),
                    (long + "?z", long, long + "?z"),
                    (long, long, long),
                    ("/environ/a", "/environ/a", "/environ/a"),
                ]
                for _ in 0..<2 {
                    for (target, pathInfo, uri) in cases {
                        let e = try environ(tcp, "GET \(target) HTTP/1.1\r\nHost: t\r\n\r\n")
                        #expect(e["PATH_INFO"] as? String == pathInfo, "\(target): \(e["PATH_INFO"] ?? "-")")
                        #expect(e["REQUEST_URI"] as? String == uri, "\(target): \(e["REQUEST_URI"] ?? "-")")
                        #expect(e["QUERY_STRING"] as? String == (target.contains("?") ? String(target.split(separator: "?")[1]) : ""))
                    }
                }
            }
        }
    }
}
