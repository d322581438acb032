import Foundation
import Glibc

// Waiting on conditions with deadlines, never sleep-and-hope. One deadline loop serves the four call styles
// the test targets use; a timeout names what was waited for.

/// Polls every `interval` seconds until `condition` holds (true) or `timeout` seconds pass (false).
private func poll(_ timeout: Double, interval: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = monotonicSeconds() + timeout
    while true {
        if try condition() { return true }
        if monotonicSeconds() >= deadline { return false }
        usleep(UInt32(interval * 1e6))
    }
}

private func pollAsync(_ timeout: Double, interval: Double, _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = monotonicSeconds() + timeout
    while true {
        if try condition() { return true }
        if monotonicSeconds() >= deadline { return false }
        // Task.sleep, not usleep: a waiting test must not hold one of the few cooperative threads.
        try await Task.sleep(nanoseconds: UInt64(interval * 1e9))
    }
}

/// Polls `condition` every 10 ms until it holds; throws (failing the test) after `timeout` seconds.
public func waitUntil(_ timeout: Double, _ what: @autoclosure () -> String, _ condition: () throws -> Bool) throws {
    if try !poll(timeout, interval: 0.01, condition) {
        throw TestFailure("timed out after \(timeout)s waiting for: \(what())")
    }
}

/// Polls `condition` every 10 ms until it holds or `timeout` seconds pass; true when it held.
@discardableResult
public func waitUntil(_ timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    try poll(timeout, interval: 0.01, condition)
}

/// Async: polls `condition` every 15 ms until it holds; fails after `timeout` seconds, naming what it waited for.
public func waitFor(_ what: @autoclosure () -> String, timeout: Double = 15, _ condition: () throws -> Bool) async throws {
    if try await !pollAsync(timeout, interval: 0.015, condition) {
        throw TestFailure("timed out after \(timeout) s waiting for \(what())")
    }
}

/// Async, timeout first: polls `condition` every 15 ms until it holds; throws after `timeout` seconds.
public func waitFor(_ timeout: Double, _ what: @autoclosure () -> String, _ condition: () throws -> Bool) async throws {
    if try await !pollAsync(timeout, interval: 0.015, condition) {
        throw TestFailure("timed out after \(timeout)s waiting for: \(what())")
    }
}

/// Runs blocking work (socket I/O) on its own thread, so the test's cooperative threads stay free.
public func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, Error>) in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}

/// A value shared between client threads and the test.
public final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    public init(_ value: T) { self.value = value }
    public func get() -> T { lock.withLock { value } }
    public func set(_ v: T) { lock.withLock { value = v } }
    public func update<R>(_ f: (inout T) -> R) -> R { lock.withLock { f(&value) } }
}

/// A thread-safe counter (unique names for files of one test process).
public final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    public init() {}
    public func next() -> Int { lock.withLock { n += 1; return n } }
}
