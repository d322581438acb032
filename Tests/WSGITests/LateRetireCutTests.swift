import Foundation
import Glibc
import Testing

/// A worker that hears of its retirement late (a single-threaded worker running a request reads the master's
/// signal only after it) must still cut what it waits for (lingering closes, offloaded transfers) before the
/// master's SIGKILL: the cut counts from the master's signal, published in the scoreboard, not from when the worker
/// heard it (found by an attack: `--worker-reload-mercy 3`, HUP 0.2 s into a 2.5 s request whose answer a client
/// did not read: the lingering close waited past the kill, 'still running after --worker-reload-mercy: SIGKILL').
extension WSGIIntegration.RequestScope {
    @Test(arguments: ["HUP", "TERM"]) func aWorkerThatHearsOfItsRetirementLateCutsBeforeTheMastersKill(signal: String) throws {
        let port = try freeLocalPort()
        try withPython(["--processes", "1", "--worker-reload-mercy", "3", "--wsgi-file", "{dir}/scope.py",
                        "--http-socket", "127.0.0.1:\(port)"],
                       socket: nil, setUp: WSGIIntegration.writeScopeApp) { s, dir throws in
            let worker = try #require(s.waitWorkers(1).first)
            // A client that neither reads its answer nor closes: the worker's close lingers on it.
            let stuck = try slowClient(port: port)
            defer { stuck.close() }
            try stuck.send("GET /slow-big HTTP/1.1\r\nHost: t\r\n\r\n")
            // The signal arrives while the request runs (the app marks its start; it then sleeps 2.5 s).
            #expect(waitUntil(10) { access(dir.file("slow-started"), F_OK) == 0 }, "the request started:\n\(s.log)")
            kill(s.pid, signal == "HUP" ? SIGHUP : SIGTERM)
            #expect(s.waitForLog("GET /slow-big 200", timeout: 10), "the request finished:\n\(s.log)")
            // Gone by itself before the master's kill at 3 s after the signal, never killed.
            #expect(waitUntil(8) { kill(worker, 0) != 0 }, "the old worker left:\n\(s.log)")
            usleep(300_000)
            #expect(!s.log.contains("SIGKILL"), "the worker cut its lingering close before the master's kill:\n\(s.log)")
        }
    }
}
