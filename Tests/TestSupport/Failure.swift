// TestSupport: what the test targets share (temp folders, waiting, child processes, /proc, raw HTTP clients,
// load loops, nginx, missing tools). Only test targets depend on it; it is never shipped, so it may use
// Foundation. Every helper is public so each test target calls it under the name it always used.
import Glibc

/// A failed step of a test, with a message that says what was expected and what was seen.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The names the test targets used for the same thing.
public typealias Failure = TestFailure
public typealias WMFailure = TestFailure

/// `strerror` of an errno value, as text.
func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }
