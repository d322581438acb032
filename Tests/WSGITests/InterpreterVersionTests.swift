// One binary, every CPython: the probe app served through each shared libpython 3.8+ on this machine.
import Foundation
import Glibc
import Testing

/// Shared libraries of the CPython 3.8+ installations here: Debian's (required; Tests/run installs
/// libpython3.11) and each pyenv version built with --enable-shared, as (version, library).
func installedSharedPythons() -> [(version: String, library: String)] {
    var found = [("3.11", "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0")]
    let root = ProcessInfo.processInfo.environment["PYENV_ROOT"] ?? (NSHomeDirectory() + "/.pyenv")
    let versions = (try? FileManager.default.contentsOfDirectory(atPath: root + "/versions")) ?? []
    for v in versions.sorted() {
        let parts = v.split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 2, parts[0] == 3, parts[1] >= 8 else { continue }
        let lib = "\(root)/versions/\(v)/lib/libpython3.\(parts[1]).so"
        if FileManager.default.fileExists(atPath: lib) { found.append((v, lib)) }
    }
    return found
}

extension WSGIIntegration {
    @Suite struct InterpreterVersions {
        @Test func theProbeAppRunsOnEveryInstalledCPython() throws {
            let pythons = installedSharedPythons()
            try #require(FileManager.default.fileExists(atPath: pythons[0].library),
                         "Debian's libpython3.11 is missing: apt-get install libpython3.11")
            for (version, library) in pythons {
                try withPython(["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--python-lib", library],
                               environment: ["PATH": "/nonexistent"]) { s, _ throws in
                    let sys = try #require(try JSONSerialization.jsonObject(with: Data(try s.get("/sys").body)) as? [String: Any])
                    #expect((sys["version"] as? String)?.hasPrefix(version) == true, "\(library): \(sys)")
                    let env = try #require(try JSONSerialization.jsonObject(with: Data(try s.get("/environ/x%20y?q=1").body)) as? [String: Any])
                    #expect(env["PATH_INFO"] as? String == "/environ/x y" && env["QUERY_STRING"] as? String == "q=1", "\(library): \(env)")
                    let lines = try post(s, "/lines", body: Array("first line\nabcdef\nthird".utf8))
                    let got = try #require(try JSONSerialization.jsonObject(with: Data(lines.body)) as? [Any], "\(library)")
                    #expect(got[0] as? String == "first line\n" && got[1] as? String == "abc"
                            && got[2] as? [String] == ["def\n", "third"], "\(library): \(got)")
                    let stream = try s.get("/stream")
                    #expect(String(decoding: stream.body, as: UTF8.self) == (0..<5).map { "chunk\($0)\n" }.joined(), "\(library)")
                }
            }
        }
    }
}
