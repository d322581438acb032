/// One request and its response on a connection, as a value: the request's scope and the
/// interim-response rule. The worker keeps one per request in hand (one per connection: HTTP/1.1
/// carries one exchange at a time), built when the head is parsed and ended when the response is.
///
/// The interim-response rule (RFC 9110 15.2 and 10.1.1): `100 Continue` is owed to a client that sent
/// `Expect: 100-continue` when the app first asks for the body, and only while no byte of the final
/// response has been written; once the final response has started, an interim one would land inside
/// its body. A client that never got its 100 may not have sent the body: that connection cannot carry
/// another request.
///
/// The scope: every object handed to the app belongs to one request `number`; once the exchange has
/// ended, or another has begun, calls through those objects are refused.
public struct Exchange: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        /// The app runs; nothing of the final response is on the wire.
        case appRunning
        /// Bytes of the final response are out (or handed to the socket).
        case responseStarted
        /// The response is complete (or cut): the request's objects are dead.
        case ended
    }

    public enum Interim: Sendable, Equatable {
        /// The client did not ask for one.
        case notExpected
        /// Asked for, not sent yet: sent at the app's first body read if the response has not started.
        case owed
        case sent
        /// The final response started first: none will be sent, and the body may never come.
        case forgone
    }

    public enum Event: Sendable, Equatable {
        /// The app asks for request body bytes.
        case bodyReadWanted
        /// Bytes of the final response are about to be written.
        case responseBytesWritten
        case ended
    }

    public enum Action: Sendable, Equatable {
        case none
        /// Write `HTTP/1.1 100 Continue` before reading the body.
        case sendContinue
        /// A call through an object of a request that is over (or not this one): refuse it.
        case refuse
    }

    public let number: UInt64
    public private(set) var phase: Phase
    public private(set) var interim: Interim

    public init(number: UInt64, expectContinue: Bool) {
        self.number = number
        phase = .appRunning
        interim = expectContinue ? .owed : .notExpected
    }

    /// An exchange that has ended (the state of a connection between requests).
    public static let idle: Exchange = {
        var e = Exchange(number: 0, expectContinue: false)
        e.phase = .ended
        return e
    }()

    /// One action, not an array: this runs for every request and every write, without allocating.
    public mutating func handle(_ event: Event) -> Action {
        switch event {
        case .bodyReadWanted:
            guard phase != .ended else { return .refuse }
            guard interim == .owed else { return .none }
            if phase == .appRunning {
                interim = .sent
                return .sendContinue
            }
            interim = .forgone
            return .none
        case .responseBytesWritten:
            guard phase != .ended else { return .refuse }
            phase = .responseStarted
            if interim == .owed { interim = .forgone }
            return .none
        case .ended:
            phase = .ended
            return .none
        }
    }

    /// Whether a call through an object of request `number` may act now.
    public func admits(_ number: UInt64) -> Bool { number == self.number && phase != .ended }

    /// Whether the connection can carry another request after this one as far as the body goes: a client
    /// still waiting for its 100 Continue (or denied it) has not sent a body we could skip.
    public var bodyFramingKnown: Bool { interim != .owed && interim != .forgone }
}
