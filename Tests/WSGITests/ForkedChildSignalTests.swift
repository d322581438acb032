import Foundation
import Glibc
import Testing
import TestSupport

/// A process the app forks (multiprocessing's fork context) is not a worker (found by an attack): it starts with no
/// signal blocked, and TERM does what it does by default: `Process.terminate()` stops it, and its TERM is not
/// reported to the master as the worker's own (which retired a worker nobody had signalled).
extension WSGIIntegration {
    @Suite struct ForkedChildSignals {
        static let app = #"""
import multiprocessing, os, signal, time, json
ctx = multiprocessing.get_context('fork')
children = {}

def child(path):
    with open(path + '.new', 'w') as f:
        f.write(json.dumps(sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))))
    os.rename(path + '.new', path)
    time.sleep(60)

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/spawn':
        p = ctx.Process(target=child, args=(environ['QUERY_STRING'],))
        p.start()
        children[p.pid] = p
        body = str(p.pid)
    elif path == '/terminate':
        p = children.pop(int(environ['QUERY_STRING']))
        started = time.monotonic()
        p.terminate()
        p.join(5)
        body = json.dumps({'exitcode': p.exitcode, 'seconds': time.monotonic() - started})
    else:
        body = 'ok'
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"""#

        @Test(arguments: ["1", "2"]) func aForkedChildStopsOnTERMAndBlocksNoSignal(threads: String) throws {
            try withPython(["--processes", "1", "--threads", threads, "--wsgi-file", "{dir}/mp.py"],
                           setUp: { dir in try dir.write("mp.py", Self.app); return [:] }) { s, dir throws in
                let marker = dir.file("mask")
                let pid = try #require(Int(String(decoding: try s.get("/spawn?\(marker)").body, as: UTF8.self)))
                #expect(waitUntil(10) { (try? String(contentsOfFile: marker, encoding: .utf8)) != nil })
                #expect((try? String(contentsOfFile: marker, encoding: .utf8)) == "[]", "blocked in the child: \((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "-")")
                let r = try s.get("/terminate?\(pid)", timeout: 15)
                let result = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
                #expect(result["exitcode"] as? Int == -Int(SIGTERM), "\(result)")
                #expect((result["seconds"] as? Double ?? 99) < 2, "\(result)")
                usleep(300_000)
                #expect(!s.log.contains("SIGTERM to the worker") && !s.log.contains("retiring worker"), "\(s.log)")
            }
        }
    }
}
