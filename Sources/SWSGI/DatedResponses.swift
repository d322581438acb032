import HTTP

// The server's responses carry Date (RFC 9110 §6.6.1): inside SWSGI the writer's calls take `date: true`
// for the current second from `DateClock`, and a refusal built without a date gets one. The HTTP module
// stays pure (its writer takes the value); these are the server's doors to it.
extension HTTPResponseWriter {
    /// `appendHead` with `date: true`: the current second's Date (or none when false).
    @discardableResult
    static func appendHead(
        status: Int, reason: String? = nil, rawReason: [UInt8]? = nil, headers: HTTPHeaders = [:], body: HTTPResponseBody,
        version: HTTPVersion = .http1_1, keepAlive: Bool = true, headRequest: Bool = false, date: Bool,
        to buffer: inout [UInt8]
    ) -> HTTPResponsePlan {
        appendHead(status: status, reason: reason, rawReason: rawReason, headers: headers, body: body, version: version,
                   keepAlive: keepAlive, headRequest: headRequest, date: date ? DateClock.now : nil, to: &buffer)
    }

    /// The `for request:` form with `date: true`.
    @discardableResult
    static func appendHead(
        status: Int, reason: String? = nil, rawReason: [UInt8]? = nil, headers: HTTPHeaders = [:], body: HTTPResponseBody,
        for request: HTTPRequestHead, keepAlive: Bool = true, date: Bool, to buffer: inout [UInt8]
    ) -> HTTPResponsePlan {
        appendHead(status: status, reason: reason, rawReason: rawReason, headers: headers, body: body, for: request,
                   keepAlive: keepAlive, date: date ? DateClock.now : nil, to: &buffer)
    }

    /// A refusal with the current second's Date (chosen over the HTTP module's dateless default).
    static func errorResponse(status: Int) -> [UInt8] { errorResponse(status: status, date: DateClock.now) }

    /// A refusal for `error` with the current second's Date.
    static func errorResponse(for error: HTTPError) -> [UInt8] { errorResponse(status: error.status, date: DateClock.now) }
}
