import Foundation
import Glibc

/// The package root (this file is Tests/TestSupport/Binaries.swift).
public let packageRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The folder where `swift build` put hupwatch, swsgi and TestChild: the test bundle's own folder
/// (or one a few levels up, should the bundle be a directory).
public let binDirectory: String = {
    var starts: [String] = []
    if let real = realpath("/proc/self/exe", nil) {
        starts.append((String(cString: real) as NSString).deletingLastPathComponent)
        free(real)
    }
    if let arg0 = CommandLine.arguments.first, let real = realpath(arg0, nil) {
        starts.append((String(cString: real) as NSString).deletingLastPathComponent)
        free(real)
    }
    for start in starts {
        var d = start
        for _ in 0..<4 {
            if ["hupwatch", "swsgi", "TestChild"].contains(where: { access(d + "/" + $0, X_OK) == 0 }) { return d }
            d = (d as NSString).deletingLastPathComponent
        }
    }
    return starts.first ?? "."
}()

/// A program of this package, built next to the test bundle; fails naming the build command.
public func binary(_ name: String) throws -> String {
    let path = binDirectory + "/" + name
    guard access(path, X_OK) == 0 else {
        throw TestFailure("\(name) not found next to the test bundle at \(path): run `swift build` first")
    }
    return path
}

/// The supervisor tests' name for `binary(_:)`.
public func builtBinary(_ name: String) throws -> String { try binary(name) }

/// `swsgi`, built next to the test bundle.
public func swsgiBinary() throws -> String { try binary("swsgi") }
