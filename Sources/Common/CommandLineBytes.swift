/// Arguments are bytes; Swift's `CommandLine.arguments` repairs bytes that are not UTF-8 into U+FFFD, which
/// would silently turn a path into another. Programs check their raw argv with this first and refuse.
public func firstNonUTF8Argument(_ argv: [[UInt8]]) -> Int? {
    argv.firstIndex { String(validating: $0, as: UTF8.self) == nil }
}
