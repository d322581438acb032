// Issue 19, items 1, 5, 6 and 8: objects bound to their request, PEP 3333 bytes on the wire, RFC 9110
// basics (Date, duplicate singleton fields), CGI's SERVER_SOFTWARE, and the log of refused requests.
import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    /// An app that keeps what one request handed it and lets a thread use it during later requests.
    static let scopeApp = #"""
import json, os, sys, threading, time

kept = {}
results = {}
go = threading.Event()
done = threading.Event()

def attempt(name, call):
    try:
        value = call()
        results[name] = {'ok': True, 'value': value.decode('latin-1') if isinstance(value, bytes) else repr(value)}
    except BaseException as e:
        results[name] = {'ok': False, 'type': type(e).__name__, 'oserror': isinstance(e, OSError), 'message': str(e)}

def use_kept():
    # Called by a thread left behind by the request that kept the objects.
    attempt('write', lambda: kept['write'](b'LEAKED-FROM-A'))
    attempt('read', lambda: kept['input'].read())
    attempt('readline', lambda: kept['input'].readline())
    attempt('start_response', lambda: kept['start_response']('200 OK', [('X-From-A', '1')]))
    attempt('file_wrapper', lambda: kept['file_wrapper'](open(__file__, 'rb')))

def waiter():
    go.wait(20)
    use_kept()
    done.set()

def read_in_thread(inp, key):
    # A thread of the app reads the whole body; what it got (or its error) goes in results[key].
    def reader():
        try:
            results[key] = {'ok': True, 'got': len(inp.read())}
        except BaseException as e:
            results[key] = {'ok': False, 'oserror': isinstance(e, OSError), 'message': str(e)}
    threading.Thread(target=reader, daemon=True).start()

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/keep':
        kept['write'] = start_response('200 OK', [('Content-Type', 'text/plain')])
        kept['start_response'] = start_response
        kept['input'] = environ['wsgi.input']
        kept['file_wrapper'] = environ['wsgi.file_wrapper']
        environ['wsgi.input'].read(2)
        threading.Thread(target=waiter, daemon=True).start()
        return [b'kept']
    if path == '/victim':
        # Another client's request with a body: the thread uses A's objects now, while B is in hand.
        go.set()
        done.wait(20)
        body = environ['wsgi.input'].read()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'B got: ' + body]
    if path == '/between':
        use_kept()
        start_response('200 OK', [])
        return [b'ok']
    if path == '/results':
        data = json.dumps(results).encode()
        start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(data)))])
        return [data]
    if path == '/latin1':
        start_response('200 OK', [('Content-Disposition', 'attachment; filename="caf\xe9.txt"')])
        return [b'file']
    if path == '/status':
        status = environ['QUERY_STRING'].replace('%20', ' ').replace('%0D', '\r').replace('%0A', '\n').replace('%E2%98%83', '\u2603')
        start_response(status, [('Content-Type', 'text/plain')])
        return [b'status sent']
    if path == '/write-custom':
        write = start_response('299 Written Custom', [('X-Caf', 'caf\xe9')])
        write(b'early ')
        return [b'and late']
    if path == '/connection-close':
        start_response('200 OK', [('Connection', 'close'), ('Content-Type', 'text/plain')])
        return [b'bye']
    if path == '/keep-alive-header':
        start_response('200 OK', [('Keep-Alive', 'timeout=5, max=100'), ('Content-Type', 'text/plain')])
        return [b'ka']
    if path == '/too-long':
        start_response('200 OK', [('Content-Length', '5')])
        return [b'01234', b'56789', b'abcdef']
    if path == '/too-long-one':
        start_response('200 OK', [('Content-Length', '5')])
        return [b'0123456789']
    if path == '/gen-too-long':
        start_response('200 OK', [('Content-Length', '5')])
        def gen():
            yield b'012'
            yield b'3456'
            results['gen-pulled-past'] = True
            yield b'789'
        return gen()
    if path == '/fw-kw':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return environ['wsgi.file_wrapper'](open(__file__, 'rb'), blksize=4096)
    if path == '/write-length':
        write = start_response('200 OK', [('Content-Length', '5')])
        write(b'hello')
        return []
    if path == '/snowman':
        start_response('200 OK', [('X-Name', '\u2603 snowman')])
        return [b'unreachable']
    if path == '/thread-writer':
        # A thread that writes through this request's write() in a loop, past the request's end.
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        def hammer():
            n = 0
            while n < 100000:
                try:
                    write(b't')
                except BaseException as e:
                    results['hammer'] = {'ok': False, 'type': type(e).__name__, 'oserror': isinstance(e, OSError), 'message': str(e), 'writes': n}
                    return
                n += 1
            results['hammer'] = {'ok': True, 'writes': n}
        threading.Thread(target=hammer, daemon=True).start()
        def gen():
            for i in range(5):
                time.sleep(0.01)
                yield b'chunk%d' % i
        return gen()
    if path == '/thread-reader':
        # A thread that reads this request's input in a loop, past the request's end.
        inp = environ['wsgi.input']
        def reader():
            got = b''
            while len(got) < 1 << 20:
                try:
                    got += inp.read(1)
                except BaseException as e:
                    results['reader'] = {'ok': False, 'oserror': isinstance(e, OSError), 'message': str(e), 'got': got.decode('latin-1')}
                    return
                time.sleep(0.001)
            results['reader'] = {'ok': True, 'got': got.decode('latin-1')}
        threading.Thread(target=reader, daemon=True).start()
        time.sleep(0.05)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'reader started']
    if path == '/slow-big':
        # A long request whose answer is larger than a client's small receive window.
        open(os.path.join(os.path.dirname(__file__), 'slow-started'), 'w').close()
        time.sleep(float(environ['QUERY_STRING'] or '2.5'))
        start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(1 << 20))])
        return [b'x' * (1 << 20)]
    if path == '/noread':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '2')])
        return [b'nr']
    if path == '/trickle-reader':
        # A thread still reading the body, bytes trickling in, as the app returns.
        read_in_thread(environ['wsgi.input'], 'trickle')
        time.sleep(0.05)
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '3')])
        return [b'ok\n']
    if path == '/blocked-reader':
        # A thread waits in a read of a body that is not all there; the app answers without it.
        read_in_thread(environ['wsgi.input'], 'blocked')
        time.sleep(0.2)
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '1')])
        return [b'A']
    if path == '/echo':
        body = environ['wsgi.input'].read()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'echo: ' + body]
    if path == '/header-control':
        start_response('200 OK', [('X-Odd', 'a\x01b' if environ['QUERY_STRING'] == '1' else 'a\x7fb')])
        return [b'unreachable']
    if path == '/two-lengths':
        start_response('200 OK', [('Content-Length', '5'), ('Content-Length', '10')])
        return [b'01234']
    if path == '/app-date':
        start_response('200 OK', [('Date', 'Sun, 06 Nov 1994 08:49:37 GMT')])
        return [b'dated']
    if path == '/environ':
        data = json.dumps({k: v for k, v in environ.items() if isinstance(v, str)}).encode()
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [data]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello']
"""#

    static let writeScopeApp = writingApp("scope.py", scopeApp)

    @Suite struct RequestScope {
        static let args = ["--processes", "1", "--wsgi-file", "{dir}/scope.py"]

        func results(_ s: Server) throws -> [String: [String: Any]] {
            let r = try s.get("/results")
            return try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: [String: Any]])
        }

        /// Item 1: write, start_response, wsgi.input and file_wrapper kept from request A and called by A's
        /// thread while another client's POST is in hand: each raises OSError, B's response and body are B's.
        @Test func objectsKeptFromARequestAreDeadDuringTheNext() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
                let a = try s.connect()
                try a.send("POST /keep HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nA-BODY-123")
                #expect(try a.readResponse().text == "kept")
                let b = try s.connect()
                try b.send("POST /victim HTTP/1.1\r\nHost: b\r\nContent-Length: 13\r\n\r\nSECRET-OF-B!!")
                let rb = try b.readResponse()
                #expect(rb.status == 200)
                #expect(rb.text == "B got: SECRET-OF-B!!", "B's response carries only B's bytes and B reads its whole body")
                #expect(rb.header("X-From-A") == nil)
                let got = try results(s)
                for name in ["write", "read", "readline", "start_response", "file_wrapper"] {
                    let r = try #require(got[name], "\(name) was tried")
                    #expect(r["ok"] as? Bool == false, "\(name) of a finished request must refuse, got \(r)")
                    #expect(r["oserror"] as? Bool == true, "\(name) raises an OSError, as gunicorn's: \(r)")
                    #expect((r["message"] as? String ?? "").contains("over"), "\(name)'s message says the request is over: \(r)")
                }
                // One log line for the kept set, however many of its objects are called, however often.
                #expect(s.waitForLog("called after its request", count: 1))
                #expect(s.log.components(separatedBy: "called after its request").count - 1 == 1, "one line:\n\(s.log)")
                // Between requests too.
                #expect(try s.get("/between").text == "ok")
                let again = try results(s)
                for name in ["write", "read", "start_response"] {
                    #expect(again[name]?["oserror"] as? Bool == true, "\(name) between requests: \(again[name] ?? [:])")
                }
                // file_wrapper takes blksize by keyword too, and its result is still sent as a file.
                let fw = try s.get("/fw-kw")
                #expect(fw.status == 200 && fw.text.hasPrefix("import json") && fw.header("Content-Length") != nil)
                // The worker serves on, and a new request's own objects work.
                let r = try post(s, "/victim", body: Array("C".utf8))
                #expect(r.text == "B got: C")
            }
        }

        /// The same input against gunicorn 27 (the issue's reference): its kept write() raises OSError and the
        /// next client's response and body stay its own, as under swsgi, where every kept object refuses.
        @Test func gunicornOnTheSameInput() async throws {
            let gunicorn = try await pythonTool("gunicorn")
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("scope.py", WSGIIntegration.scopeApp)
            let sock = dir.file("g.sock")
            let child = try Child([gunicorn, "--workers", "1", "--bind", "unix:" + sock, "--chdir", dir.path,
                                   "--no-control-socket", "scope:application"],
                                  output: dir.file("gunicorn.log"), environment: cleanEnvironment())
            defer { _ = child.stop() }
            #expect(waitUntil(15) { (try? Client(path: sock, timeout: 1)) != nil }, "gunicorn answers: \(child.output)")
            func exchange(_ raw: String) throws -> HTTPReply {
                let c = try Client(path: sock)
                try c.send(raw)
                return try c.readResponse()
            }
            #expect(try exchange("POST /keep HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nA-BODY-123").text == "kept")
            let b = try exchange("POST /victim HTTP/1.1\r\nHost: b\r\nContent-Length: 13\r\n\r\nSECRET-OF-B!!")
            #expect(b.text == "B got: SECRET-OF-B!!")
            let got = try #require(try JSONSerialization.jsonObject(with: Data(try exchange("GET /results HTTP/1.1\r\nHost: c\r\n\r\n").body))
                                   as? [String: [String: Any]])
            let write = got["write"] ?? [:], read = got["read"] ?? [:]
            #expect(write["oserror"] as? Bool == true, "gunicorn: \(got)")
            let readValue = read["value"] as? String ?? ""
            #expect(!readValue.contains("SECRET"), "gunicorn: \(got)")
        }

        /// Attack: a thread writes through its request's write() in a loop while the request streams and after it
        /// ends; the next request on the same connection must parse, and the thread must get OSError.
        @Test func threadWritingPastItsRequestCannotCorruptTheConnection() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
                for round in 0..<5 {
                    let c = try s.connect()
                    try c.send("GET /thread-writer HTTP/1.1\r\nHost: t\r\n\r\n")
                    let a = try c.readResponse()
                    #expect(a.status == 200, "round \(round)")
                    #expect(a.text.contains("chunk4"), "the response is whole and well framed")
                    let rest = a.text.replacingOccurrences(of: "t", with: "")
                    #expect(rest == "chunk0chunk1chunk2chunk3chunk4", "only the thread's bytes and the iterable's: \(a.text.prefix(200))")
                    try c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                    let b = try c.readResponse()
                    #expect(b.text == "hello", "the next response on the connection is intact (round \(round))")
                    #expect(waitUntil(10) { (try? results(s)["hammer"]) != nil })
                    let h = try results(s)["hammer"] ?? [:]
                    #expect(h["oserror"] as? Bool == true, "the thread's write past its request raises OSError: \(h)")
                }
            }
        }

        /// Attack: a thread reads its request's wsgi.input a byte at a time past the request's end, while the next
        /// client sends a body with Expect: 100-continue: that body is the next request's alone.
        @Test func threadReadingPastItsRequestGetsNothingOfTheNext() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
                let a = try s.connect()
                try a.send("POST /thread-reader HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nAAAAAA")
                #expect(try a.readResponse().text == "reader started")
                let b = try s.connect()
                try b.send("POST /echo HTTP/1.1\r\nHost: b\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n")
                let interim = try b.readResponse()
                #expect(interim.status == 100)
                try b.send("B-SECRETS")
                #expect(try b.readResponse().text == "echo: B-SECRETS")
                #expect(waitUntil(10) { (try? results(s)["reader"]) != nil })
                let r = try results(s)["reader"] ?? [:]
                #expect(r["oserror"] as? Bool == true, "\(r)")
                #expect(!(r["got"] as? String ?? "B").contains("B"), "no byte of B's body: \(r)")
            }
        }

        /// Attack: odd statuses and an app's own Date.
        @Test func informationalStatusesAndTheAppsDate() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
                for q in ["103%20Early%20Hints", "100%20Continue", "101%20Switching"] {
                    #expect(try s.get("/status?" + q).status == 500, "\(q) cannot be a final status")
                }
                #expect(s.waitForLog("informational"))
                let bare = try s.get("/status?204")
                #expect(bare.status == 204 && bare.reason == "No Content", "a status without a reason gets the standard one")
                #expect(try s.get("/header-control?1").status == 500, "\\x01 in a header value")
                #expect(try s.get("/header-control?2").status == 500, "DEL in a header value")
                #expect(try s.get("/two-lengths").status == 500)
                #expect(s.waitForLog("different values (5 and 10)"))
                let d = try s.get("/app-date")
                #expect(d.headerCount("Date") == 1 && d.header("Date") == "Sun, 06 Nov 1994 08:49:37 GMT")
            }
        }

        /// Item 5: latin-1 header values go out as latin-1 bytes; the app's reason phrase is sent as given.
        @Test func headerBytesAndReasonPhrasesAsTheAppGaveThem() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
                let c = try s.connect()
                try c.send("GET /latin1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                let raw = try c.readToEnd(timeout: 10)
                let expected = Array("filename=\"caf".utf8) + [0xE9] + Array(".txt\"".utf8)
                #expect(occurs(expected, in: raw), "é is the one byte E9: \(raw.map { String(format: "%02x", $0) }.joined())")
                #expect(!occurs([0xC3, 0xA9], in: raw), "not UTF-8")
                // The same through write() (the head leaves early) and through a streamed iterable.
                let w = try s.connect()
                try w.send("GET /write-custom HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                let wraw = try w.readToEnd(timeout: 10)
                #expect(occurs(Array("HTTP/1.1 299 Written Custom\r\n".utf8), in: wraw))
                #expect(occurs(Array("X-Caf: caf".utf8) + [0xE9, 0x0D, 0x0A], in: wraw))
                for (query, line) in [("299%20Custom", "299 Custom"), ("429%20Slow%20Down%20Please", "429 Slow Down Please"),
                                      ("200%20Fine%20Thanks", "200 Fine Thanks")] {
                    let r = try s.get("/status?" + query)
                    #expect("\(r.status) \(r.reason)" == line)
                }
            }
        }

        /// Item 5: a status with CR/LF or a character outside latin-1 answers 500 with a log line.
        @Test func badStatusAnswers500WithALogLine() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
                let crlf = try s.get("/status?200%20OK%0D%0AX-Injected:%201")
                #expect(crlf.status == 500)
                #expect(crlf.header("X-Injected") == nil)
                let lf = try s.get("/status?200%20O%0AK")
                #expect(lf.status == 500)
                let snowman = try s.get("/status?200%20%E2%98%83")
                #expect(snowman.status == 500)
                #expect(s.waitForLog("control character", count: 2), "CR/LF in the status is logged:\n\(s.log)")
                #expect(s.log.contains("U+2603"), "the character outside latin-1 is named:\n\(s.log)")
            }
        }

        /// Item 5: the app's Connection: close closes the connection; its Keep-Alive does not contradict ours.
        @Test func appConnectionCloseAndKeepAlive() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
                let c = try s.connect()
                try c.send("GET /connection-close HTTP/1.1\r\nHost: t\r\n\r\n")
                let r = try c.readResponse()
                #expect(r.text == "bye")
                #expect(r.header("Connection")?.lowercased() == "close")
                #expect(c.closesWithoutData(timeout: 5), "the connection is closed after the response")
                let k = try s.connect()
                try k.send("GET /keep-alive-header HTTP/1.1\r\nHost: t\r\n\r\n")
                let kr = try k.readResponse()
                #expect(kr.text == "ka")
                #expect(kr.header("Keep-Alive") == nil, "the app's Keep-Alive (timeout=5) is not the server's timeout: dropped")
                try k.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try k.readResponse().text == "hello", "the connection stays open")
            }
        }

        /// Item 6: Date on every response (app and refusal), SERVER_SOFTWARE, a body past Content-Length logged once.
        @Test func dateServerSoftwareAndOverlongBodies() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
                let fmt = DateFormatter()
                fmt.locale = Locale(identifier: "en_US_POSIX")
                fmt.timeZone = TimeZone(identifier: "GMT")
                fmt.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
                let r = try s.get("/")
                let date = try #require(r.header("Date"), "a Date header")
                let parsed = try #require(fmt.date(from: date), "IMF-fixdate: \(date)")
                #expect(abs(parsed.timeIntervalSinceNow) < 5)
                #expect(fmt.string(from: parsed) == date)
                let c = try s.connect()
                try c.send("GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n")
                let refused = try c.readResponse()
                #expect(refused.status == 400)
                #expect(refused.header("Date") != nil, "refusals carry Date too")
                let env = try #require(try JSONSerialization.jsonObject(with: Data(try s.get("/environ").body)) as? [String: Any])
                #expect((env["SERVER_SOFTWARE"] as? String ?? "").hasPrefix("swsgi/"))
                let long = try s.get("/too-long")
                #expect(long.text == "01234")
                let one = try s.get("/too-long-one")
                #expect(one.text == "01234")
                let gen = try s.get("/gen-too-long")
                #expect(gen.text == "01234")
                #expect(try results(s)["gen-pulled-past"] == nil, "PEP 3333: iteration stops once Content-Length is reached")
                // A HEAD (no body sent) or a body exactly its length is not logged.
                for method in ["HEAD", "GET"] {
                    let c = try s.connect()
                    try c.send("\(method) /write-length HTTP/1.1\r\nHost: t\r\n\r\n")
                    let r = try c.readResponse(headRequest: method == "HEAD")
                    #expect(r.status == 200 && r.header("Content-Length") == "5")
                }
                #expect(s.waitForLog("longer than its Content-Length", count: 3))
                #expect(try s.get("/").text == "hello")
                #expect(s.log.components(separatedBy: "longer than its Content-Length").count - 1 == 3, "once per response:\n\(s.log)")
            }
        }

        /// Item 6: duplicate singleton request fields are refused with 400.
        @Test func duplicateSingletonFieldsAre400() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
                for dup in ["Content-Type: text/plain\r\nContent-Type: application/json",
                            "Authorization: Basic a\r\nAuthorization: Basic b",
                            "Content-Length: 1\r\nContent-Length: 2",
                            "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:38 GMT"] {
                    let c = try s.connect()
                    try c.send("POST /environ HTTP/1.1\r\nHost: t\r\n\(dup)\r\n\r\nx")
                    #expect(try c.readResponse().status == 400, "\(dup)")
                }
                // List fields may repeat.
                let c = try s.connect()
                try c.send("GET /environ HTTP/1.1\r\nHost: t\r\nAccept: a/b\r\nAccept: c/d\r\n\r\n")
                #expect(try c.readResponse().status == 200)
                #expect(s.log.contains("Content-Type"), "the log names the duplicated field:\n\(s.log)")
            }
        }

        /// Item 8: a request refused before the app runs is logged with its method, path and the bytes sent;
        /// an invalid header says what is wrong in plain words.
        @Test func refusedRequestsAreLoggedWithMethodPathAndBytes() throws {
            try withPython(Self.args + ["--limit-post", "100"], setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
                let c = try s.connect()
                try c.send("POST /upload/here?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
                let r = try c.readResponse()
                #expect(r.status == 413)
                #expect(s.waitForLog("POST /upload/here?x=1 413 \(r.body.count)B"), "log:\n\(s.log)")
                #expect(!s.log.contains("- - 413"))
                #expect(s.log.contains("larger than"), "plain words:\n\(s.log)")
                // A chunked body over the limit is refused while the app reads it: plain words too.
                let chunked = try s.connect()
                try chunked.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 + "c8\r\n" + String(repeating: "z", count: 200) + "\r\n0\r\n\r\n")
                #expect(try chunked.readResponse().status == 413)
                #expect(s.waitForLog("POST /echo 413"), "log:\n\(s.log)")
                #expect(!s.log.contains("HTTPError("), "no type dump in the log:\n\(s.log)")
                // Refused while the head was scanned (431): the request line had arrived, so it is named.
                let big = try s.connect()
                try big.send("GET /huge/head HTTP/1.1\r\nHost: t\r\nX-Big: " + String(repeating: "b", count: 9000) + "\r\n\r\n")
                let r431 = try big.readResponse()
                #expect(r431.status == 431)
                #expect(s.waitForLog("GET /huge/head 431 \(r431.body.count)B"), "log:\n\(s.log)")
                // A duplicate singleton: named in plain words.
                let dup = try s.connect()
                try dup.send("POST /dup HTTP/1.1\r\nHost: t\r\nContent-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 0\r\n\r\n")
                #expect(try dup.readResponse().status == 400)
                #expect(s.waitForLog("POST /dup 400 16B"), "log:\n\(s.log)")
                #expect(s.log.contains("Content-Type given more than once"))
                let bad = try s.get("/snowman")
                #expect(bad.status == 500)
                #expect(s.waitForLog("X-Name"), "the header is named:\n\(s.log)")
                #expect(!s.log.contains("not str"), "no 'must be a str ..., not str':\n\(s.log)")
                #expect(s.log.contains("U+2603"))
            }
        }
    }
}

/// Whether `needle` occurs in `hay`.
func occurs(_ needle: [UInt8], in hay: [UInt8]) -> Bool {
    guard !needle.isEmpty, hay.count >= needle.count else { return needle.isEmpty }
    return (0...(hay.count - needle.count)).contains { Array(hay[$0..<($0 + needle.count)]) == needle }
}
