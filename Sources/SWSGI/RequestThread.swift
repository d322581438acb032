import Glibc
import HTTP
import Posix
import WorkerCore

/// One request thread of a `ThreadedWorker`: takes a job (a connection with a complete head), runs
/// the app, writes the response and gives the connection back. Its state is its own; what the worker
/// reads of it (busy, the request, its harakiri deadline) changes only under the worker's monitor.
final class RequestThread: RequestServer {
    let index: Int
    unowned let worker: ThreadedWorker
    let app: Application
    let log: AccessLog
    var inHand: InHand?
    var responseBuffer: [UInt8] = []
    /// Set once the thread runs (its pthread id is CPython's thread id on Linux).
    var pthreadID: UInt = 0

    // Under the worker's monitor.
    var busy = false
    var requestStarted: Instant = 0
    var requestMethod = ""
    var requestPath = ""
    var requestNumber: UInt64 = 0
    var harakiriDeadline: Instant?

    init(index: Int, worker: ThreadedWorker, app: @escaping Application) {
        self.index = index
        self.worker = worker
        self.app = app
        log = AccessLog(settings: worker.ctx.settings, workerID: worker.ctx.id, remote: worker.ctx.remoteLabel)
    }

    func loop() -> Never {
        let id = UInt(pthread_self())
        worker.monitor.withLock { pthreadID = id }
        while true {
            let job = worker.nextJob()
            var rest = job.rest
            let keepAlive = serve(job.connection, job.head, rest: &rest)
            worker.monitor.withLock {
                worker.finishedLocked(.init(connection: job.connection, keepAlive: keepAlive, rest: rest))
            }
        }
    }

    private func setHarakiriDeadlineLocked(_ at: Instant?) {
        harakiriDeadline = at
        worker.publishLocked()
    }

    /// Runs the app for one request and writes its response; true when the connection stays open.
    /// (The single-threaded `Worker.serve`, with the worker-wide state behind the monitor.)
    private func serve(_ c: Connection, _ head: HTTPRequestHead, rest: inout ArraySlice<UInt8>) -> Bool {
        let ctx = worker.ctx
        let started = c.lastActivity
        let harakiri = ctx.settings.harakiriNanoseconds
        let number: UInt64 = worker.monitor.withLock {
            worker.requestCounter += 1
            requestNumber = worker.requestCounter
            busy = true
            requestStarted = started
            requestMethod = head.method
            requestPath = head.path
            setHarakiriDeadlineLocked(harakiri > 0 ? started.saturatingAdd(harakiri) : nil)
            return worker.requestCounter
        }
        // This thread's own scoreboard row (stats, busyness): written by this thread only.
        let sb = ctx.scoreboard, slot = ctx.slot
        sb.set(slot, core: index, .requestStartNanos, Int64(clamping: started))
        sb.setRequest(slot, core: index, method: head.method, path: head.path)
        sb.set(slot, core: index, .state, Scoreboard.State.busy.rawValue)
        let timeout = worker.writeTimeoutMilliseconds
        c.begin(Exchange(number: number, expectContinue: head.expectContinue))
        let reader = BodyReader(connection: c, head: head, limits: ctx.settings.limits, initial: rest,
                                timeoutMilliseconds: timeout, bodyTimeoutNanoseconds: ctx.settings.bodyTimeoutNanoseconds)
        let request = Request(head: head, body: reader, remote: c.remoteLabel,
                              workerID: ctx.id, requestID: worker.requestIDPrefix, number: number, addresses: c.addresses,
                              cgiVariables: c.uwsgi?.variables, server: self)
        inHand = InHand(connection: c, version: head.version, keepAlive: head.keepAlive, isHead: head.isHeadMethod, started: started)
        var response: Response
        var note: String? = nil
        var appFailed = false
        // The app raised (reload-on-exception): before its response, or while producing it.
        var appRaised = false
        do {
            response = try app(request)
        } catch let e as RequestBodyError {
            response = Response(status: e.status, text: e.message + "\n")
            note = e.message
            appFailed = true
        } catch {
            response = Response(status: 500, text: "Internal Server Error\n")
            note = "application error: \(error)"
            appFailed = true
            appRaised = true
        }
        let early = inHand?.early
        inHand?.appReturned = true
        var bodyComplete = true
        if early == nil, case .bytes = response.body {
            bodyComplete = reader.finish()
            rest = reader.leftover
        }
        let keepAlive = head.keepAlive && !retiring && !c.closeAfterNext && bodyComplete
        var out = responseBuffer
        responseBuffer = []
        out.removeAll(keepingCapacity: true)
        defer { if out.capacity <= Worker.keptResponseBufferBytes { responseBuffer = out } }
        var sent = 0, headBytes = 0
        var streamed: StreamFraming?
        var plan: HTTPResponsePlan
        if let early {
            plan = early.plan
            plan.keepAlive = plan.keepAlive && keepAlive && !appFailed
            if !appFailed {
                do {
                    switch response.body {
                    case .bytes(let body): try early.stream.write(body)
                    case .stream(let produce): try produce(early.stream)
                    }
                    try early.framing.end()
                } catch {
                    plan.keepAlive = false
                    if error is ApplicationFailure { appRaised = true }
                    note = (note.map { $0 + "; " } ?? "") + "response not completed: \(error)"
                }
            }
            sent = early.framing.sent
            response.status = early.status
            if !reader.finish() { plan.keepAlive = false }
            rest = reader.leftover
        } else {
            do {
                switch response.body {
                case .bytes(let body):
                    plan = HTTPResponseWriter.appendHead(status: response.status, rawReason: response.reason, headers: response.headers,
                                                         body: .contentLength(body.count), for: head, keepAlive: keepAlive, date: DateClock.now, to: &out)
                    headBytes = out.count
                if plan.sendsBody { out += body; sent = body.count }
                    try c.writeAll(out, timeoutMilliseconds: timeout)
                case .stream(let produce):
                    let length = response.contentLength
                    plan = HTTPResponseWriter.appendHead(status: response.status, rawReason: response.reason, headers: response.headers,
                                                         body: length.map { .contentLength($0) } ?? .streamed, for: head,
                                                         keepAlive: keepAlive, date: DateClock.now, to: &out)
                    headBytes = out.count
                    if plan.sendsBody {
                        let stream = StreamFraming(connection: c, head: out, chunked: plan.chunked, declaredLength: length,
                                                   timeoutMilliseconds: timeout)
                        streamed = stream
                        try produce(ResponseStream(sink: stream.write, fileSink: stream.sendFile))
                        try stream.end()
                        sent = stream.sent
                    } else {
                        try c.writeAll(out, timeoutMilliseconds: timeout)
                    }
                    if !reader.finish() { plan.keepAlive = false }
                    rest = reader.leftover
                }
            } catch {
                plan = HTTPResponsePlan(sendsBody: false, chunked: false, keepAlive: false)
                if error is ApplicationFailure { appRaised = true }
                note = (note.map { $0 + "; " } ?? "") + "response not completed: \(error)"
            }
        }
        response.finish?()
        request.server = nil
        inHand = nil
        _ = c.exchange(.ended)
        let finished = monotonicNanoseconds()
        sb.set(slot, core: index, .requests, sb.get(slot, core: index, .requests) + 1)
        sb.set(slot, core: index, .state, Scoreboard.State.idle.rawValue)
        worker.monitor.withLock {
            busy = false
            setHarakiriDeadlineLocked(nil)
            worker.countServedLocked(busyNanoseconds: finished - min(started, finished), appRaised: appRaised)
        }
        if log.wants(status: response.status) {
            log.write(method: head.method, path: head.target, status: response.status, bytes: sent, started: started, note: note, head: head,
                      headerBytes: headBytes, headerCount: response.headers.count, viaSendfile: streamed?.usedSendfile ?? false,
                      cgi: c.uwsgi?.variables, peer: c.addresses, core: index)
        }
        c.lastActivity = finished
        return plan.keepAlive
    }

    /// The worker retires (HUP, max-requests, harakiri): this response closes its connection.
    private var retiring: Bool { worker.monitor.withLock { worker.retiring } }
}

extension RequestThread {
    func startResponse(status: Int, reason: [UInt8]?, headers: HTTPHeaders, contentLength length: Int?) throws -> ResponseStream {
        guard let request = inHand, !request.appReturned else { throw SWSGIError("this request cannot start its response early") }
        if let early = request.early { return early.stream }
        let c = request.connection
        var out: [UInt8] = []
        let plan = HTTPResponseWriter.appendHead(status: status, rawReason: reason, headers: headers, body: length.map { .contentLength($0) } ?? .streamed,
                                                 version: request.version, keepAlive: request.keepAlive && !retiring && !c.closeAfterNext,
                                                 headRequest: request.isHead, date: DateClock.now, to: &out)
        let framing = StreamFraming(connection: c, head: out, chunked: plan.chunked, declaredLength: plan.sendsBody ? length : 0,
                                    timeoutMilliseconds: worker.writeTimeoutMilliseconds)
        let stream = ResponseStream(sink: framing.write, fileSink: framing.sendFile)
        inHand?.early = (status, plan, framing, stream)
        return stream
    }

    func shortenHarakiri(to nanoseconds: UInt64) {
        guard let started = inHand?.started else { return }
        let at = started.saturatingAdd(nanoseconds)
        worker.monitor.withLock {
            if harakiriDeadline.map({ at < $0 }) ?? true { setHarakiriDeadlineLocked(at) }
        }
    }
}
