import Glibc

/// A failed system call: its name, errno and what it was working on.
/// Renders as `bind(app.sock): Address already in use`.
public struct SyscallError: Error, CustomStringConvertible, Equatable {
    public let call: String
    public let errno: Int32
    public let context: String?

    public init(_ call: String, errno: Int32 = Glibc.errno, context: String? = nil) {
        self.call = call
        self.errno = errno
        self.context = context
    }

    public var description: String {
        let what = context.map { "\(call)(\($0))" } ?? call
        return "\(what): \(errnoText(errno))"
    }
}

/// The text strerror gives for `code`.
public func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// Runs a syscall wrapper, retrying on EINTR, and throws `SyscallError` when it returns -1.
@discardableResult
public func syscall<T: BinaryInteger>(_ call: String, _ context: String? = nil, _ body: () -> T) throws -> T {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = errno
        if e == EINTR { continue }
        throw SyscallError(call, errno: e, context: context)
    }
}
