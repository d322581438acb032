import Foundation
import Glibc

// Tools the suite runs for real (nginx, gunicorn, uWSGI, runit, s6, supervisord, ...). Tests/run installs
// them; a test that finds one missing fails with the command that installs it, never skips silently.

/// How each tool the suite uses gets installed (what Tests/run does).
public let installCommands: [String: String] = [
    "nginx": "apt-get install -y nginx-light",
    "curl": "apt-get install -y curl",
    "runsvdir": "apt-get install -y runit",
    "runsv": "apt-get install -y runit",
    "sv": "apt-get install -y runit",
    "svlogd": "apt-get install -y runit",
    "s6-svscanctl": "apt-get install -y s6",
    "s6-log": "apt-get install -y s6",
    "s6-svscan": "apt-get install -y s6",
    "s6-svc": "apt-get install -y s6",
    "s6-svstat": "apt-get install -y s6",
    "uwsgi": "apt-get install -y uwsgi uwsgi-plugin-python3",
    "systemd-analyze": "apt-get install -y systemd",
    "python3": "apt-get install -y python3",
    "unshare": "apt-get install -y util-linux",
    "gunicorn": "python3 -m pip install 'gunicorn>=27'",
    "supervisord": "python3 -m pip install supervisor",
    "supervisorctl": "python3 -m pip install supervisor",
]

/// Folders searched for tools: PATH, then the sbin and bin folders a non-login PATH may lack.
private func toolDirectories() -> [String] {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"]
}

/// The path of an installed tool, or nil.
public func findTool(_ name: String) -> String? {
    toolDirectories().map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
}

/// A tool from a system package, found on PATH (plus the sbin folders). Fails naming the install command.
public func tool(_ name: String, install: String) throws -> String {
    if let p = findTool(name) { return p }
    throw TestFailure("\(name) is not installed: run `\(install)` (Tests/run installs it on a clean machine)")
}

/// A tool the suite knows how to install (see `installCommands`); fails naming the install command.
public func requireTool(_ name: String) throws -> String {
    try tool(name, install: installCommands[name] ?? "apt-get install -y \(name)")
}

/// A tool installed by pip: next to python3's real interpreter (past a pyenv shim), else on PATH.
public func pythonTool(_ name: String) async throws -> String {
    let install = installCommands[name] ?? "python3 -m pip install \(name)"
    if let python = findTool("python3") {
        let script = "import os, sys; print(os.path.join(os.path.dirname(sys.executable), '\(name)'))"
        if let r = try? await run([python, "-c", script], timeout: 30), r.status == 0 {
            let p = r.output.trimmingCharacters(in: .whitespacesAndNewlines)
            if access(p, X_OK) == 0 { return p }
        }
    }
    return try tool(name, install: install)
}
