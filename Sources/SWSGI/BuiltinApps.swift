import Glibc
import HTTP
import SWSGIConfig

/// The applications the `swsgi` executable hosts with `--app`.
public enum BuiltinApps {
    /// `Hello, World!`: the benchmark app.
    public static func hello(_ request: Request) throws -> Response {
        Response(headers: ["Content-Type": "text/plain"], body: helloBody)
    }
    static let helloBody = Array("Hello, World!\n".utf8)

    /// Sends the request body back (with its Content-Type); for a bodiless request, the method and target.
    /// Up to `echoBufferBytes` are collected and answered with a Content-Length (a client may send its
    /// whole body before reading); beyond that the body is streamed back as it arrives, never held whole,
    /// so memory stays flat whatever --limit-post allows.
    public static func echo(_ request: Request) throws -> Response {
        if request.header("Content-Length") == nil && request.header("Transfer-Encoding") == nil {
            return Response(text: "\(request.method) \(request.target)\n")
        }
        let headers: HTTPHeaders = ["Content-Type": request.header("Content-Type") ?? "application/octet-stream"]
        var collected: [UInt8] = []
        while collected.count < echoBufferBytes {
            guard let piece = try request.body.read() else { return Response(headers: headers, body: collected) }
            collected += piece
        }
        return Response(headers: headers) { out in
            try out.write(collected)
            collected = []
            while let piece = try request.body.read() { try out.write(piece) }
        }
    }
    static let echoBufferBytes = 1 << 20

    /// `/sleep/SECONDS` holds the worker that long: for timeouts, harakiri and graceful shutdown tests.
    public static func sleep(_ request: Request) throws -> Response {
        let parts = request.path.split(separator: "/")
        // The root answers at once, so health checks and readiness probes work against this app too.
        if parts.isEmpty { return Response(text: "use /sleep/SECONDS\n") }
        guard parts.count == 2, parts[0] == "sleep", let s = Double(parts[1]), s >= 0, s <= 86400 else {
            return Response(status: 404, text: "use /sleep/SECONDS\n")
        }
        var left = s
        // usleep takes less than 1 s reliably; loop so a long sleep is not cut short.
        while left > 0 {
            let step = min(left, 0.5)
            usleep(useconds_t(step * 1_000_000))
            left -= step
        }
        return Response(text: "slept \(parts[1])\n")
    }

    /// The sleep app's harakiri handler: proves the graceful signal reached the app before SIGKILL.
    public static let sleepHarakiriHandler: HarakiriHandler = { sig in
        // A static string and write(2): nothing here may allocate inside a signal handler.
        let line: StaticString = "swsgi sleep app: harakiri graceful signal received\n"
        _ = write(2, line.utf8Start, line.utf8CodeUnitCount)
    }

    /// The application `--app` names.
    public static func named(_ app: BuiltinApp, staticFiles: StaticFileOptions = StaticFileOptions()) throws -> Application {
        switch app {
        case .hello: return hello
        case .echo: return echo
        case .sleep: return sleep
        case .staticFiles(let dir): return try StaticFiles(root: dir, options: staticFiles).respond
        }
    }
}
