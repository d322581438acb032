import Foundation
import Glibc
import Posix
import Testing

extension HupwatchIntegration {
    /// The set-up users run: nginx with an upstream keep-alive pool -> Unix socket -> hupwatch -> swsgi.
    @Suite(.serialized) struct BehindNginx {
        @Test func reloadsThroughNginxWithAKeepAlivePoolLoseNothing() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let sock = dir.file("app.sock")
            let port = try freeLocalPort()
            let hw = try Hupwatch(["--", try binary("swsgi"), "--socket", sock, "--processes", "2", "--disable-logging"], dir: dir)
            defer { hw.kill() }
            let nginx = try Nginx.start(dir: dir, config: Nginx.config(dir: dir, port: port, upstream: "unix:\(sock)", keepalive: 8))
            defer { nginx.stop() }
            _ = try hw.waitServing(1)
            try Nginx.waitAnswering(port: port, dir: dir)

            // Two clients without pause, through nginx, while 5 reloads happen one after another.
            let load = LoadClient(endpoint: .tcp(port: port), concurrency: 2, timeoutSeconds: 10, pauseMicroseconds: 0)
            defer { try? load.stop() }
            try waitUntil(10, "the first answers") { load.succeeded >= 50 }
            for n in 2...6 {
                hw.signal(SIGHUP)
                _ = try hw.waitServing(n)
                let mark = load.succeeded
                try waitUntil(10, "answers after reload \(n - 1)") { load.succeeded >= mark + 50 }
            }
            try load.stop()
            let (answered, failed) = (load.succeeded, load.failures.map(\.error))
            print("behind nginx: \(answered) requests across 5 reloads, \(failed.count) failed")
            #expect(failed.isEmpty, "\(failed.count) failed: \(Dictionary(grouping: failed, by: { $0 }).mapValues(\.count))")
            #expect(answered > 250)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
            #expect(!dir.exists("app.sock"), "swsgi removes its own socket path at exit")
        }
    }
}
