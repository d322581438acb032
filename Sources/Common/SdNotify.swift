/// The sd_notify datagram format (sd_notify(3)): newline-separated `KEY=VALUE` assignments.
public struct NotifyMessage: Equatable, Sendable {
    public let assignments: [(key: String, value: String)]

    public static func == (a: NotifyMessage, b: NotifyMessage) -> Bool {
        a.assignments.elementsEqual(b.assignments) { $0.key == $1.key && $0.value == $1.value }
    }

    public init(_ bytes: some Sequence<UInt8>) {
        let text = String(decoding: Array(bytes), as: UTF8.self)
        assignments = text.split(separator: "\n").compactMap { line in
            guard let eq = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<eq]), String(line[line.index(after: eq)...]))
        }
    }

    public func value(_ key: String) -> String? { assignments.last { $0.key == key }?.value }

    /// `READY=1`: the sender finished starting up.
    public var saysReady: Bool { value("READY") == "1" }
}
