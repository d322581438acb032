import HTTP

/// A response the app started before returning (WSGI's write()): its head and body go out through `framing`.
struct EarlyResponse {
    let status: Int
    let plan: HTTPResponsePlan
    let framing: StreamFraming
    let stream: ResponseStream
}

/// What writing a response did, for the connection and the access log.
struct SentResponse {
    /// The plan followed; its `keepAlive`: whether the connection can carry another request.
    var plan: HTTPResponsePlan
    /// Body bytes sent (what a failed stream had sent when it failed).
    var sent = 0
    /// Bytes of the head this call wrote (0 after an early start: that head went out before).
    var headBytes = 0
    /// The body went out with sendfile(2).
    var viaSendfile = false
    /// The app raised while its body was produced (reload-on-exception counts it).
    var appRaised = false
    /// The body was handed to an offload thread (`--offload-threads`): `sent` is what it was given to send.
    var offloaded = false
}

/// How a request's response is written, for the single-threaded `Worker` and each `RequestThread` alike:
/// what differs between them (where the request number, the scoreboard row and keep-alive come from) stays
/// with them; the bytes on the wire are decided here once.
enum ResponseSending {
    /// Starts a response before the app returns: the head waits in the framing and leaves with the first
    /// body bytes (one send, no Nagle wait between them); with no body allowed (HEAD, 204, 205, 304), the stream
    /// takes nothing and the head leaves at the end.
    static func startEarly(status: Int, reason: [UInt8]?, headers: HTTPHeaders, contentLength length: Int?,
                           for request: InHand, keepAlive: Bool, timeoutMilliseconds: Int32) throws -> EarlyResponse {
        if let bad = HTTPResponseWriter.firstInvalidFieldName(headers) { throw SWSGIError(HTTPResponseWriter.invalidNameMessage(bad)) }
        var out: [UInt8] = []
        let plan = HTTPResponseWriter.appendHead(status: status, rawReason: reason, headers: headers, body: length.map { .contentLength($0) } ?? .streamed,
                                                 version: request.version, keepAlive: keepAlive,
                                                 headRequest: request.isHead, date: DateClock.now, to: &out)
        let framing = StreamFraming(connection: request.connection, head: out, chunked: plan.chunked,
                                    declaredLength: plan.sendsBody ? length : 0, timeoutMilliseconds: timeoutMilliseconds)
        return EarlyResponse(status: status, plan: plan, framing: framing, stream: ResponseStream(sink: framing.write, fileSink: framing.sendFile))
    }

    /// Writes `response` (the rest of it after an early start) on `c` and consumes what the app left of the
    /// request body. `keepAlive`: whether the server would keep the connection. `out`: the caller's reusable
    /// buffer, empty. A failure is added to `note`; `response.status` becomes what was sent.
    /// `offload`: the worker's offload threads (`--offload-threads`), which take a file body once its head is out.
    static func send(_ response: inout Response, early: EarlyResponse?, appFailed: Bool, head: HTTPRequestHead, keepAlive: Bool,
                     on c: Connection, reader: BodyReader, rest: inout ArraySlice<UInt8>, buffer out: inout [UInt8],
                     fieldLines: HTTPFieldLinesCache? = nil, timeoutMilliseconds: Int32, note: inout String?,
                     offload: OffloadPool? = nil) -> SentResponse {
        // The usual response (bytes the app returned, names checked when start_response took them) is written
        // here; every other case is in `sendOther`, out of line, so the hot path stays a few cache lines long
        // (the instruction cache holds only part of a request's code: counted with callgrind's cache model).
        if _fastPath(early == nil && response.headerNamesChecked), case .bytes(let body) = response.body {
            return sendBytes(body, of: response, head: head, keepAlive: keepAlive, on: c, buffer: &out, fieldLines: fieldLines,
                             timeoutMilliseconds: timeoutMilliseconds, note: &note)
        }
        return sendOther(&response, early: early, appFailed: appFailed, head: head, keepAlive: keepAlive, on: c, reader: reader,
                         rest: &rest, buffer: &out, fieldLines: fieldLines, timeoutMilliseconds: timeoutMilliseconds, note: &note,
                         offload: offload)
    }

    /// A whole body in bytes: the head and the body in one send. A failed send is added to `note` and closes.
    @inline(__always)
    private static func sendBytes(_ body: [UInt8], of response: borrowing Response, head: HTTPRequestHead, keepAlive: Bool,
                                  on c: Connection, buffer out: inout [UInt8], fieldLines: HTTPFieldLinesCache?,
                                  timeoutMilliseconds: Int32, note: inout String?) -> SentResponse {
        let plan = HTTPResponseWriter.appendHead(status: response.status, rawReason: response.reason, headers: response.headers,
                                                 body: .contentLength(body.count), for: head, keepAlive: keepAlive, date: DateClock.now,
                                                 fieldLines: fieldLines, to: &out)
        let headBytes = out.count
        var sent = 0
        if plan.sendsBody { out += body; sent = body.count }
        do {
            try c.writeAll(out, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            note = (note.map { $0 + "; " } ?? "") + "response not completed: \(error)"
            return SentResponse(plan: HTTPResponsePlan(sendsBody: false, chunked: false, keepAlive: false), sent: sent, headBytes: headBytes)
        }
        return SentResponse(plan: plan, sent: sent, headBytes: headBytes)
    }

    /// `send` for every response but the usual one.
    @inline(never)
    private static func sendOther(_ response: inout Response, early: EarlyResponse?, appFailed: Bool, head: HTTPRequestHead,
                                  keepAlive: Bool, on c: Connection, reader: BodyReader, rest: inout ArraySlice<UInt8>,
                                  buffer out: inout [UInt8], fieldLines: HTTPFieldLinesCache?, timeoutMilliseconds: Int32,
                                  note: inout String?, offload: OffloadPool?) -> SentResponse {
        var appRaised = false
        func failed(_ error: Error) {
            if error is ApplicationFailure { appRaised = true }
            note = (note.map { $0 + "; " } ?? "") + "response not completed: \(error)"
        }
        // A header name that is not a token is never written (WSGI's start_response refuses it before this).
        if early == nil, !response.headerNamesChecked, let bad = HTTPResponseWriter.firstInvalidFieldName(response.headers) {
            let finish = response.finish
            response = Response(status: 500, text: "Internal Server Error\n")
            response.finish = finish
            note = (note.map { $0 + "; " } ?? "") + "application error: " + HTTPResponseWriter.invalidNameMessage(bad)
        }
        if case .file(let file) = response.body {
            if early == nil, let offload, file.count > 0, !Self.bodyless(response.status, head) {
                // The hand-over's fds are made before the head goes out: when they cannot be (EMFILE under many
                // slow clients), the worker sends the body itself instead of leaving a head with nothing behind.
                do {
                    let job = try offload.reserve(socket: c.fd, file: file, label: "\(head.method) \(head.target)")
                    return handOver(job, of: &response, to: offload, head: head, on: c, reader: reader, rest: &rest, buffer: &out,
                                    timeoutMilliseconds: timeoutMilliseconds, failed: failed)
                } catch {
                    note = (note.map { $0 + "; " } ?? "") + "not offloaded: \(error)"
                }
            }
            // Sent here: as a stream of known length (sendfile(2) when the framing allows it).
            response.body = .stream(file.asStream)
            response.contentLength = file.count
        }
        if let early {
            // The head is out: the rest of the body follows it; a failure can only cut the connection.
            var plan = early.plan
            plan.keepAlive = plan.keepAlive && keepAlive && !appFailed
            // An app that failed after its response started: no last chunk, so the client sees it cut short.
            if !appFailed {
                do {
                    switch response.body {
                    case .bytes(let body): try early.stream.write(body)
                    case .stream(let produce): try produce(early.stream)
                    case .file(let file): try file.asStream(early.stream)
                    }
                    try early.framing.end()
                } catch {
                    plan.keepAlive = false
                    failed(error)
                }
            }
            response.status = early.status
            if !reader.finishOnceResponded() { plan.keepAlive = false }
            rest = reader.leftover
            return SentResponse(plan: plan, sent: early.framing.sent, appRaised: appRaised)
        }
        var sent = 0, headBytes = 0
        /// A streamed response's framing: what it sent is logged even when the stream failed midway.
        var streamed: StreamFraming?
        do {
            switch response.body {
            case .bytes(let body):
                return sendBytes(body, of: response, head: head, keepAlive: keepAlive, on: c, buffer: &out, fieldLines: fieldLines,
                                 timeoutMilliseconds: timeoutMilliseconds, note: &note)
            case .file:
                // Made a stream above: a file body reaches here only when offloaded.
                throw SWSGIError("internal: a file body was neither offloaded nor streamed")
            case .stream(let produce):
                let length = response.contentLength
                var plan = HTTPResponseWriter.appendHead(status: response.status, rawReason: response.reason, headers: response.headers,
                                                         body: length.map { .contentLength($0) } ?? .streamed, for: head,
                                                         keepAlive: keepAlive, date: DateClock.now, fieldLines: fieldLines, to: &out)
                headBytes = out.count
                if plan.sendsBody {
                    // The head goes out with the first body bytes: one send, and no Nagle wait between them.
                    let stream = StreamFraming(connection: c, head: out, chunked: plan.chunked, declaredLength: length,
                                               timeoutMilliseconds: timeoutMilliseconds)
                    streamed = stream
                    try produce(ResponseStream(sink: stream.write, fileSink: stream.sendFile))
                    try stream.end()
                    sent = stream.sent
                } else {
                    try c.writeAll(out, timeoutMilliseconds: timeoutMilliseconds)
                }
                if !reader.finishOnceResponded() { plan.keepAlive = false }
                rest = reader.leftover
                return SentResponse(plan: plan, sent: sent, headBytes: headBytes, viaSendfile: streamed?.usedSendfile ?? false)
            }
        } catch {
            failed(error)
            return SentResponse(plan: HTTPResponsePlan(sendsBody: false, chunked: false, keepAlive: false), sent: streamed?.sent ?? sent,
                                headBytes: headBytes, viaSendfile: streamed?.usedSendfile ?? false, appRaised: appRaised)
        }
    }

    /// A response that may carry no body whatever it says (HEAD, 1xx, 204, 205, 304; the writer's rule): nothing to offload.
    private static func bodyless(_ status: Int, _ head: HTTPRequestHead) -> Bool {
        head.isHeadMethod || HTTPResponseWriter.sendsNoContent(status)
    }

    /// uWSGI's offload (core/offload.c, `uwsgi_response_sendfile_do` with `can_offload`): the worker writes the
    /// head, then an offload thread takes the socket and the file and sends the body without blocking; the
    /// connection ends with the transfer (the offload takes the socket over), so the head says `Connection: close`.
    /// The request is over for the worker when this returns: the access log counts the bytes handed over.
    private static func handOver(_ job: OffloadJob, of response: inout Response, to offload: OffloadPool, head: HTTPRequestHead,
                                 on c: Connection, reader: BodyReader, rest: inout ArraySlice<UInt8>, buffer out: inout [UInt8],
                                 timeoutMilliseconds: Int32, failed: (Error) -> Void) -> SentResponse {
        // The request body the app left is read first: the connection closes after the transfer, and closing a
        // socket with unread input resets it, which could cut the response short at the client.
        _ = reader.finish()
        rest = []
        let plan = HTTPResponseWriter.appendHead(status: response.status, rawReason: response.reason, headers: response.headers,
                                                 body: .contentLength(job.count), for: head, keepAlive: false,
                                                 date: DateClock.now, to: &out)
        let headBytes = out.count
        do {
            try c.writeAll(out, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            job.release()
            failed(error)
            return SentResponse(plan: HTTPResponsePlan(sendsBody: false, chunked: false, keepAlive: false), sent: 0, headBytes: headBytes)
        }
        do { try offload.submit(job) } catch {
            failed(error)
            return SentResponse(plan: HTTPResponsePlan(sendsBody: false, chunked: false, keepAlive: false), sent: 0, headBytes: headBytes)
        }
        // From here the connection's end is the offload thread's.
        c.offloaded = true
        return SentResponse(plan: plan, sent: job.count, headBytes: headBytes, viaSendfile: true, offloaded: true)
    }
}
