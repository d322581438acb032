@testable import SWSGIConfig
import Testing
@_exported import TestSupport

struct FileMissing: Error, CustomStringConvertible {
    var description: String { "No such file or directory" }
}

/// Loads with an in-memory ini file at `app.ini` (if `ini` is given).
func load(_ args: [String] = [], env: [String] = [], ini: String? = nil, cores: Int = 4) throws(ConfigError) -> LoadResult {
    try ServerOptions.load(arguments: args, environment: env, cores: cores) { path in
        guard let ini, path == "app.ini" else { throw FileMissing() }
        return ini
    }
}

/// The options a successful load runs with.
func options(_ args: [String] = [], env: [String] = [], ini: String? = nil, cores: Int = 4) throws -> ServerOptions {
    let result = try load(args, env: env, ini: ini, cores: cores)
    guard case .run(let o) = result else {
        Issue.record("expected .run, got \(result)")
        return ServerOptions(cores: cores)
    }
    return o
}

/// The error message a load fails with, or nil if it succeeds.
func failure(_ args: [String] = [], env: [String] = [], ini: String? = nil, cores: Int = 4) -> String? {
    do {
        _ = try load(args, env: env, ini: ini, cores: cores)
        return nil
    } catch {
        return error.message
    }
}

/// The error from setting one option on the command line.
func cliFailure(_ name: String, _ value: String, extra: [String] = []) -> String? {
    failure(["--\(name)", value] + extra)
}

/// Options built in code, validated.
func validationFailure(_ change: (inout ServerOptions) -> Void) -> String? {
    var o = ServerOptions(cores: 4)
    change(&o)
    do {
        try o.validate()
        return nil
    } catch {
        return error.message
    }
}

let s: UInt64 = 1_000_000_000
