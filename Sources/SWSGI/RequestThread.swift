import Common
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
    /// When this thread took its request (`requestStarted` is the head's arrival, before any wait in the queue).
    var busySince: Instant = 0
    /// The connection of the request in hand (the harakiri watch answers on it).
    var connection: Connection?
    /// The last request the harakiri watch answered for this thread (its `requestNumber`).
    var answeredRequest: UInt64 = 0

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
        let (number, doomed): (UInt64, Bool) = worker.monitor.withLock {
            worker.requestCounter += 1
            requestNumber = worker.requestCounter
            busy = true
            busySince = monotonicNanoseconds()
            requestStarted = started
            requestMethod = head.method
            requestPath = head.path
            connection = c
            setHarakiriDeadlineLocked(harakiri > 0 ? started.saturatingAdd(harakiri) : nil)
            // The worker is about to be killed by a harakiri: this request is answered, not started.
            let doomed = worker.watch?.notice.answersNewRequests ?? false
            if doomed { answeredRequest = requestNumber }
            return (worker.requestCounter, doomed)
        }
        // This thread's own scoreboard row (stats, busyness): written by this thread only.
        let sb = ctx.scoreboard, slot = ctx.slot
        sb.set(slot, core: index, .requestStartNanos, Int64(clamping: started))
        sb.setRequest(slot, core: index, method: head.method, path: head.path)
        sb.set(slot, core: index, .state, Scoreboard.State.busy.rawValue)
        let timeout = worker.writeTimeoutMilliseconds
        // Under the I/O lock: the harakiri watch reads the exchange there (see `HarakiriWatch`).
        c.io.withLock { c.begin(Exchange(number: number, expectContinue: head.expectContinue)) }
        let reader = BodyReader(connection: c, head: head, limits: ctx.limits, initial: rest,
                                timeoutMilliseconds: timeout, bodyTimeoutNanoseconds: ctx.settings.bodyTimeoutNanoseconds)
        let request = Request(head: head, body: reader, remote: c.remoteLabel,
                              workerID: ctx.id, requestID: worker.requestIDPrefix, number: number, addresses: c.addresses,
                              cgiVariables: c.uwsgi?.variables, server: self)
        // The last request before --max-requests: its response (early-started or not) says close.
        let keepRequested = head.keepAlive && !worker.recycling.isLast(request: number)
        inHand = InHand(connection: c, version: head.version, keepAlive: keepRequested, isHead: head.isHeadMethod, started: started)
        var response: Response
        var note: String? = nil
        var appFailed = false
        // The app raised (reload-on-exception): before its response, or while producing it.
        var appRaised = false
        do {
            if doomed {
                response = Response(status: 503, text: "Service Unavailable\n")
                note = "harakiri: the worker is about to be killed"
            } else {
                response = try app(request)
            }
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
        var bodyComplete = true, drainAfter = false
        if doomed {
            bodyComplete = false
        } else if early == nil, case .bytes = response.body {
            // What has not arrived yet is waited for only after the response (`finishAfterResponse`).
            bodyComplete = reader.finish()
            if !bodyComplete && reader.mayCompleteAfterResponse { bodyComplete = true; drainAfter = true }
            rest = reader.leftover
        }
        let keepAlive = keepRequested && !retiring && !c.closeAfterNext && bodyComplete
        var out = KeptBuffer.take(&responseBuffer)
        defer { KeptBuffer.giveBack(out, to: &responseBuffer) }
        var result = ResponseSending.send(&response, early: early, appFailed: appFailed, head: head, keepAlive: keepAlive, on: c,
                                          reader: reader, rest: &rest, buffer: &out, timeoutMilliseconds: timeout, note: &note,
                                          offload: worker.offload)
        if drainAfter && result.plan.keepAlive {
            if reader.finishAfterResponse() { rest = reader.leftover } else { result.plan.keepAlive = false }
        }
        let plan = result.plan, sent = result.sent
        if result.appRaised { appRaised = true }
        response.finish?()
        request.server = nil
        inHand = nil
        c.io.withLock { _ = c.exchange(.ended) }
        let finished = monotonicNanoseconds()
        sb.set(slot, core: index, .requests, sb.get(slot, core: index, .requests) + 1)
        sb.set(slot, core: index, .state, Scoreboard.State.idle.rawValue)
        worker.monitor.withLock {
            busy = false
            connection = nil
            setHarakiriDeadlineLocked(nil)
            worker.countServedLocked(busyNanoseconds: finished - min(started, finished), appRaised: appRaised)
        }
        if log.wants(status: response.status) {
            log.write(method: head.method, path: head.target, status: response.status, bytes: sent, started: started, note: note, head: head,
                      headerBytes: result.headBytes, headerCount: response.headers.count, viaSendfile: result.viaSendfile,
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
        let early = try ResponseSending.startEarly(status: status, reason: reason, headers: headers, contentLength: length, for: request,
                                               keepAlive: request.keepAlive && !retiring && !request.connection.closeAfterNext,
                                               timeoutMilliseconds: worker.writeTimeoutMilliseconds)
        inHand?.early = early
        return early.stream
    }

    func shortenHarakiri(to nanoseconds: UInt64) {
        guard let started = inHand?.started else { return }
        let at = started.saturatingAdd(nanoseconds)
        worker.monitor.withLock {
            if harakiriDeadline.map({ at < $0 }) ?? true { setHarakiriDeadlineLocked(at) }
        }
    }
}
