import Foundation
import Glibc
import Testing

/// A Python interpreter the tests run apps with: Debian's (libpython3.11 package, found through
/// /usr/bin/python3) and the python3 on PATH (pyenv's, built shared) when it is another one.
struct PythonUnderTest: CustomStringConvertible, Sendable {
    let name: String
    let environment: [String: String]
    let python3: String
    var description: String { name }

    static let debian = PythonUnderTest(name: "debian", environment: ["PATH": "/usr/bin:/bin"], python3: "/usr/bin/python3")
    static let path = PythonUnderTest(name: "python3 on PATH", environment: [:], python3: "python3")

    /// Each interpreter once: the PATH one only when it differs from Debian's.
    static var all: [PythonUnderTest] {
        let which = (try? runCommand("/bin/sh", ["-c", "command -v python3"]))?.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let resolved = which.flatMap { try? runCommand($0, ["-c", "import sys; print(sys.prefix)"]) }?.output ?? ""
        return resolved.hasPrefix("/usr\n") || resolved.isEmpty ? [.debian] : [.debian, .path]
    }

    /// Fails with the install command when a package the test needs is missing for this interpreter.
    func require(_ module: String) throws {
        let r = try runCommand("/bin/sh", ["-c", "\(python3) -c 'import \(module)'"], environment: cleanEnvironment(environment))
        if r.status != 0 {
            let install = name == "debian" ? "apt-get install python3-\(module)" : "\(python3) -m pip install \(module)"
            throw TestFailure("\(module) is not installed for \(name)'s python3: run `\(install)` (Tests/run does)")
        }
    }
}

func runCommand(_ path: String, _ args: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let environment { p.environment = environment }
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The probe app and a data file in `dir`; the environment the app reads them from.
func writeProbe(_ dir: TempDir) throws -> [String: String] {
    try dir.write("probe.py", Fixtures.probe)
    try dir.write("validated_probe.py", Fixtures.validated(module: "probe"))
    try FileManager.default.createDirectory(atPath: dir.file("markers"), withIntermediateDirectories: true)
    var data = [UInt8](repeating: 0, count: 300_000)
    for i in data.indices { data[i] = UInt8(truncatingIfNeeded: i * 7 + i / 251) }
    try dir.write("data.bin", bytes: data)
    return ["PROBE_MARKERS": dir.file("markers"), "PROBE_FILE": dir.file("data.bin")]
}

func probeData(_ dir: TempDir) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("data.bin")))) }

func markerExists(_ dir: TempDir, _ name: String) -> Bool { fileExists(dir.file("markers/\(name)")) }

/// Resident set size (or its peak, VmHWM) of a process, in bytes.
func memoryOf(_ pid: Int32, _ field: String = "VmRSS") -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        return line.split(separator: " ").compactMap { Int($0) }.first.map { $0 * 1024 }
    }
    return nil
}

/// Runs `body` with a Python app served by one swsgi; stops and reaps it whatever happens.
/// A `setUp` for `withPython` that writes one app file, `source`, as `file` in the test's folder.
func writingApp(_ file: String, _ source: String) -> @Sendable (TempDir) throws -> [String: String] {
    { dir in
        try dir.write(file, source)
        return [:]
    }
}

func withPython(_ args: [String], python: PythonUnderTest = .debian, environment: [String: String] = [:], socket: String? = "s",
                newProcessGroup: Bool = false,
                setUp: (TempDir) throws -> [String: String] = writeProbe, _ body: (Server, TempDir) throws -> Void) throws {
    let dir = try TempDir()
    defer { dir.remove() }
    var env = try setUp(dir)
    env.merge(python.environment) { _, b in b }
    env.merge(environment) { _, b in b }
    let s = try Server(args.map { $0.replacingOccurrences(of: "{dir}", with: dir.path) }, dir: dir, socket: socket, environment: env,
                       ready: socket != nil, newProcessGroup: newProcessGroup)
    defer { s.stop() }
    if socket == nil, !waitUntil(15, { s.log.contains("workers accepting") }) {
        throw TestFailure("swsgi \(args) did not become ready; log:\n\(s.log)")
    }
    try body(s, dir)
}

func post(_ s: Server, _ target: String, body: [UInt8], contentType: String = "application/octet-stream",
          extra: [String] = [], timeout: Double = 20) throws -> HTTPReply {
    let c = try s.connect()
    try c.send("POST \(target) HTTP/1.1\r\nHost: test\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
               + extra.map { $0 + "\r\n" }.joined() + "\r\n")
    try c.send(body)
    return try c.readResponse(timeout: timeout)
}

@Suite(.serialized, .timeLimit(.minutes(3)))
struct WSGIIntegration {}
