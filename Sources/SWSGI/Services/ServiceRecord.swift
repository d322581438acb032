/// The records the master, workers and mules exchange on the services' channels: a signal to run, a mule
/// message, a mule function call. One record is one SOCK_SEQPACKET message.
enum ServiceRecord: Equatable {
    case signal(Int, scheduledAt: UInt64)
    case message([UInt8])
    case function(name: String, payload: [UInt8])

    private enum Kind: UInt8 { case signal = 1, message = 2, function = 3 }

    var bytes: [UInt8] {
        switch self {
        case .signal(let signal, let at):
            var r: [UInt8] = [Kind.signal.rawValue, UInt8(signal)]
            withUnsafeBytes(of: at.littleEndian) { r += $0 }
            return r
        case .message(let m):
            return [Kind.message.rawValue] + m
        case .function(let name, let payload):
            let n = Array(name.utf8)
            return [Kind.function.rawValue, UInt8(n.count)] + n + payload
        }
    }

    /// nil for a record of no known shape.
    init?(_ r: [UInt8]) {
        switch r.first.flatMap(Kind.init(rawValue:)) {
        case .signal:
            guard r.count == 10 else { return nil }
            var at: UInt64 = 0
            for i in 0..<8 { at |= UInt64(r[2 + i]) << (8 * i) }
            self = .signal(Int(r[1]), scheduledAt: at)
        case .message:
            self = .message(Array(r.dropFirst()))
        case .function:
            guard r.count >= 2, r.count >= 2 + Int(r[1]) else { return nil }
            self = .function(name: String(decoding: r[2..<(2 + Int(r[1]))], as: UTF8.self), payload: Array(r[(2 + Int(r[1]))...]))
        case nil:
            return nil
        }
    }
}
