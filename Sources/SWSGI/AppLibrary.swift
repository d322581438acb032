import Glibc
import HTTP

/// The C ABI between swsgi and an app compiled as a shared library (`--app-library PATH.so`).
///
/// The library exports one symbol, `swsgi_app_v1`:
/// ```c
/// typedef void (*swsgi_respond_v1)(void *ctx, const uint8_t *response, size_t length);
/// int swsgi_app_v1(const uint8_t *request, size_t length, void *ctx, swsgi_respond_v1 respond);
/// ```
/// It returns 0 after calling `respond` exactly once, non-zero on failure (answered with 500).
/// Only bytes cross the boundary, so the library and swsgi never share Swift types or runtimes'
/// assumptions. Request blob: lines `method`, `target`, `path`, `query`, `remote`, `worker id`,
/// `request id`, then `Name: value` header lines, an empty line, and the body (read in full first,
/// within --limit-post). Response blob: `STATUS`, `Name: value` lines, an empty line, the body.
/// Lines end with `\n`; header fields never contain one (the parser refuses them).
///
/// A Swift app exports itself in one line (see `exportApplication`):
/// ```swift
/// @_cdecl("swsgi_app_v1") public func entry(_ r: UnsafePointer<UInt8>?, _ n: Int, _ c: UnsafeMutableRawPointer?,
///     _ respond: SWSGIRespond?) -> Int32 { exportApplication(myApp, r, n, c, respond) }
/// ```
public typealias SWSGIRespond = @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<UInt8>?, Int) -> Void
typealias SWSGIEntry = @convention(c) (UnsafePointer<UInt8>?, Int, UnsafeMutableRawPointer?, SWSGIRespond?) -> Int32

enum AppLibrary {
    static let entrySymbol = "swsgi_app_v1"

    /// An optional second symbol: `void swsgi_harakiri_v1(int sig)`, installed as the HarakiriHandler.
    static let harakiriSymbol = "swsgi_harakiri_v1"

    /// dlopens the library and returns an Application that calls its entry point.
    static func load(_ path: String) throws -> (Application, HarakiriHandler?) {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw SWSGIError("--app-library \(path): \(dlerror().map { String(cString: $0) } ?? "cannot load")")
        }
        guard let sym = dlsym(handle, entrySymbol) else {
            throw SWSGIError("--app-library \(path): no symbol \(entrySymbol) (export it with @_cdecl(\"\(entrySymbol)\"), see SWSGI.exportApplication)")
        }
        let entry = unsafeBitCast(sym, to: SWSGIEntry.self)
        let handler = dlsym(handle, harakiriSymbol).map { unsafeBitCast($0, to: HarakiriHandler.self) }
        let app: Application = { request in
            let blob = try encodeRequest(request)
            let box = ResponseBox()
            let ctx = Unmanaged.passUnretained(box).toOpaque()
            let rc = blob.withUnsafeBufferPointer { entry($0.baseAddress, $0.count, ctx, collectResponse) }
            guard rc == 0, let bytes = box.bytes, let response = decodeResponse(bytes) else {
                throw SWSGIError("\(path): \(entrySymbol) failed (returned \(rc)\(box.bytes == nil ? ", no response" : ""))")
            }
            return response
        }
        return (app, handler)
    }

    final class ResponseBox { var bytes: [UInt8]? }

    static let collectResponse: SWSGIRespond = { ctx, p, n in
        guard let ctx, let p else { return }
        Unmanaged<ResponseBox>.fromOpaque(ctx).takeUnretainedValue().bytes = Array(UnsafeBufferPointer(start: p, count: n))
    }

    static func encodeRequest(_ r: Request) throws -> [UInt8] {
        var text = "\(r.method)\n\(r.target)\n\(r.path)\n\(r.query ?? "")\n\(r.remote)\n\(r.workerID)\n\(r.requestID)\n"
        for f in r.headers.fields { text += "\(f.name): \(f.value)\n" }
        text += "\n"
        return Array(text.utf8) + (try r.body.readAll())
    }

    static func decodeResponse(_ bytes: [UInt8]) -> Response? {
        guard let (lines, body) = splitHead(bytes), let first = lines.first, let status = Int(first), (100...999).contains(status) else { return nil }
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers.append(String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingSpaces)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// Lines up to the first empty line, and the bytes after it.
    static func splitHead(_ bytes: [UInt8]) -> ([String], [UInt8])? {
        var lines: [String] = []
        var start = 0
        var i = 0
        while i < bytes.count {
            if bytes[i] == 10 {
                if i == start { return (lines, Array(bytes[(i + 1)...])) }
                lines.append(String(decoding: bytes[start..<i], as: UTF8.self))
                start = i + 1
            }
            i += 1
        }
        return nil
    }
}

/// Runs `app` for a request blob from swsgi and hands the response blob back: the body of a
/// library's exported `swsgi_app_v1` (see `AppLibrary`).
public func exportApplication(_ app: Application, _ request: UnsafePointer<UInt8>?, _ length: Int,
                              _ ctx: UnsafeMutableRawPointer?, _ respond: SWSGIRespond?) -> Int32 {
    guard let request, let respond else { return 1 }
    let bytes = Array(UnsafeBufferPointer(start: request, count: length))
    guard let (lines, body) = AppLibrary.splitHead(bytes), lines.count >= 7 else { return 2 }
    var headers = HTTPHeaders()
    for line in lines.dropFirst(7) {
        guard let colon = line.firstIndex(of: ":") else { return 2 }
        headers.append(String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingSpaces)
    }
    let target = lines[1]
    let head = HTTPRequestHead(method: lines[0], path: lines[2], query: lines[3].isEmpty && !target.contains("?") ? nil : lines[3],
                               version: .http1_1, headers: headers, keepAlive: true, expectContinue: false,
                               framing: body.isEmpty ? .none : .contentLength(body.count))
    var delivered = false
    let requestBody = RequestBody { if delivered || body.isEmpty { return nil }; delivered = true; return body }
    let req = Request(head: head, body: requestBody, remote: lines[4], workerID: Int(lines[5]) ?? 0, requestID: lines[6])
    do {
        let response = try app(req)
        var out = Array("\(response.status)\n".utf8)
        for f in response.headers.fields { out += Array("\(f.name): \(f.value)\n".utf8) }
        out.append(10)
        switch response.body {
        case .bytes(let b): out += b
        case .stream(let produce):
            var collected: [UInt8] = []
            try produce(ResponseStream { collected += $0 })
            out += collected
        case .file(let file):
            var collected: [UInt8] = []
            try file.asStream(ResponseStream { collected += $0 })
            out += collected
        }
        out.withUnsafeBufferPointer { respond(ctx, $0.baseAddress, $0.count) }
        return 0
    } catch {
        return 3
    }
}
