// `pip install swsgi`: the wheel Packaging/wheel/build writes, installed into fresh virtualenvs and used
// the way a Python user would (issue 18).
import Foundation
import Glibc
import Testing
import TestSupport

/// The wheel under test: $PACKAGING_TEST_WHEEL (Tests/run builds it once before `swift test`), else built now.
private func wheelPath() async throws -> String {
    if let given = ProcessInfo.processInfo.environment["PACKAGING_TEST_WHEEL"], !given.isEmpty { return given }
    let output = try await check(["/bin/sh", "-c", "cd '\(packageRoot)' && Packaging/wheel/build"], timeout: 1800)
    return try #require(output.split(separator: "\n").last.map(String.init), "the build printed no wheel path: \(output)")
}

/// The version written once in the sources: the wheel's and both programs' --version must be this one.
private func sourceVersion() throws -> String {
    let text = try String(contentsOfFile: packageRoot + "/Sources/Common/Version.swift", encoding: .utf8)
    let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("public let packageVersion = ") })
    return String(line.split(separator: "\"")[1])
}

/// Every path under `root` (files, links and folders), relative to it.
private func tree(_ root: String) -> Set<String> {
    var paths: Set<String> = []
    let e = FileManager.default.enumerator(atPath: root)
    while let p = e?.nextObject() as? String { paths.insert(p) }
    return paths
}

private func fileSize(_ path: String) -> Int {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : -1
}

/// hupwatch's status file: the generation serving alone, once settled.
private func settledGeneration(_ path: String) -> Int? {
    guard let data = FileManager.default.contents(atPath: path),
          let doc = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let gens = doc["generations"] as? [[String: Any]], gens.count == 1,
          gens[0]["serving"] as? Bool == true, gens[0]["state"] as? String == "ready" else { return nil }
    return doc["current_generation"] as? Int
}

private let flaskApp = """
    import sys
    from flask import Flask

    app = Flask(__name__)

    @app.route("/")
    def index():
        return "prefix=%s python=%d.%d" % (sys.prefix, sys.version_info[0], sys.version_info[1])
    """

/// A virtualenv made by `python -m venv` with Flask in it.
private struct Venv {
    let path: String
    let python: String
    init(_ path: String, base: String) async throws {
        self.path = path
        python = path + "/bin/python"
        try await check(["/usr/bin/env", base, "-m", "venv", path], timeout: 120)
        try await pip(["install", "flask"])
    }
    /// A venv of `base` (nil: none) with Flask and the wheel.
    static func withWheel(_ base: String?, at path: String, wheel: String) async throws -> Venv? {
        guard let base else { return nil }
        let venv = try await Venv(path, base: base)
        try await venv.pip(["install", wheel])
        return venv
    }
    func pip(_ args: [String]) async throws {
        try await check([python, "-m", "pip", "-q", "--disable-pip-version-check"] + args, timeout: 300)
    }
    /// `source venv/bin/activate`: its bin first on PATH, VIRTUAL_ENV set.
    var activated: [String: String] {
        testEnvironment(["PATH": path + "/bin:/usr/bin:/bin", "VIRTUAL_ENV": path])
    }
    /// Nothing activated, and no python3 on PATH but Debian's.
    var plain: [String: String] {
        var env = testEnvironment(["PATH": "/usr/bin:/bin"])
        env["VIRTUAL_ENV"] = nil
        return env
    }
}

/// Runs `command` (a shell line, in `dir`) until GET / on `port` answers 200; returns the body and stops it.
private func serveOnce(_ command: String, in dir: TempDir, port: UInt16, environment: [String: String], log: String) throws -> String {
    let child = try Child(["/bin/sh", "-c", "cd '\(dir.file("app"))' && exec \(command)"], output: dir.file(log),
                          environment: environment)
    defer { child.stop() }
    var body = ""
    try waitUntil(30, "\(command) to answer on port \(port): \(child.output)") {
        guard child.running else { throw TestFailure("\(command) exited \(child.exitCode ?? -1): \(child.output)") }
        if case .success(let r) = getOnce(.tcp(port: port)), r.status == 200 { body = r.body; return true }
        return false
    }
    #expect(child.stop() == 0, "\(command): \(child.output)")
    return body
}

/// A WSGI app with no dependency: which interpreter hosts it.
private let whoApp = """
    import sys

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("prefix=%s python=%d.%d" % (sys.prefix, sys.version_info[0], sys.version_info[1])).encode()]
    """

@Suite(.serialized) struct WheelTests {
    /// `python -m swsgi` from installs whose scripts are not the interpreter's own (`pip install --target`,
    /// `--prefix`, `--user`, a base Python seen from a `--system-site-packages` venv): it runs the
    /// executable of the install it was imported from, and the app runs in the Python that ran `-m swsgi`,
    /// not in whatever python3 is first on PATH.
    @Test func pythonDashMSwsgiRunsItsInstallWithThatPython() async throws {
        let wheel = try await wheelPath()
        let version = try sourceVersion()
        let pyenv = NSHomeDirectory() + "/.pyenv/versions"
        // A Python that is not PATH's python3 (Debian's, in `plain`): the one the app must run in.
        guard let base = ((try? FileManager.default.contentsOfDirectory(atPath: pyenv)) ?? [])
            .filter({ $0.hasPrefix("3.1") }).sorted().last.map({ "\(pyenv)/\($0)/bin/python3" }) else {
            print("WheelTests: no pyenv 3.1x in \(pyenv): the python -m swsgi install-scheme check did not run")
            return
        }
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.mkdir("app")
        try dir.write("app/app.py", whoApp)
        let (target, prefix, venv) = (dir.file("t"), dir.file("p"), dir.file("v"))
        // A venv without pip (fast) whose python imports swsgi from PYTHONPATH.
        try await check([base, "-m", "venv", "--without-pip", venv], timeout: 120)
        for scheme in ["--target", "--prefix"] {
            try await check([base, "-m", "pip", "-q", "--disable-pip-version-check", "install", "--no-deps", "--no-index",
                             "--ignore-installed", scheme, scheme == "--target" ? target : prefix, wheel], timeout: 120)
        }
        let sitePackages = try #require(try await check(["/bin/sh", "-c", "echo '\(prefix)'/lib/python3.*/site-packages"])
            .split(separator: "\n").first.map(String.init))
        var plain = testEnvironment(["PATH": "/usr/bin:/bin"])
        plain["VIRTUAL_ENV"] = nil

        // --target DIR: the executable is DIR/bin/swsgi.
        let r = try await run([venv + "/bin/python", "-m", "swsgi", "--version"],
                              environment: plain.merging(["PYTHONPATH": target]) { $1 })
        #expect(r.status == 0 && r.output.trimmingCharacters(in: .whitespacesAndNewlines) == "swsgi \(version)", "\(r.output)")

        // --prefix DIR: DIR/bin/swsgi has no python beside it; the app runs in the venv's python.
        let port = try freeLocalPort()
        let body = try serveOnce("'\(venv)/bin/python' -m swsgi --module app:app --http-socket 127.0.0.1:\(port)", in: dir,
                                 port: port, environment: plain.merging(["PYTHONPATH": sitePackages]) { $1 }, log: "prefix.log")
        #expect(body.hasPrefix("prefix=\(venv) "), "\(body)")
    }


    /// The wheel's executables in a root holding only what `ldd` names (the dynamic loader, libc, libm)
    /// plus /proc and /dev: no Swift runtime, no C++ runtime. hupwatch serves swsgi's hello app and reloads it.
    @Test func theExecutablesNeedOnlyGlibc() async throws {
        guard getuid() == 0 else {
            print("WheelTests: not root, so no chroot: the glibc-only check did not run")
            return
        }
        let wheel = try await wheelPath()
        let dir = try TempDir()
        defer { dir.remove() }
        let root = dir.file("root")
        for d in ["root/proc", "root/dev", "root/tmp"] { try dir.mkdir(d) }
        try await check(["/usr/bin/env", "python3", "-c", """
            import os, sys, zipfile
            z = zipfile.ZipFile(sys.argv[1])
            for n in z.namelist():
                if "/scripts/" in n:
                    p = os.path.join(sys.argv[2], os.path.basename(n))
                    open(p, "wb").write(z.read(n)); os.chmod(p, 0o755)
            """, wheel, root])
        let ldd = try await check(["/usr/bin/ldd", root + "/swsgi", root + "/hupwatch"])
        let libraries = Set(ldd.split(separator: "\n").compactMap { line -> String? in
            line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first { $0.hasPrefix("/") && !$0.hasSuffix(":") }.map(String.init)
        })
        #expect(libraries.count == 3 && libraries.allSatisfy { ["libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"].contains(URL(fileURLWithPath: $0).lastPathComponent) },
                "\(ldd)")
        for library in libraries { try await check(["/bin/cp", "--parents", "-L", library, root]) }
        let port = try freeLocalPort()
        let hupwatch = try Child(["/usr/bin/unshare", "-m", "/bin/sh", "-c",
                                  "mount --bind /proc '\(root)/proc' && mount --bind /dev '\(root)/dev' && exec chroot '\(root)' "
                                  + "/hupwatch --listen 127.0.0.1:\(port) -- /swsgi --app hello --http-socket 127.0.0.1:\(port)"],
                                 output: dir.file("chroot.log"), environment: testEnvironment())
        defer { hupwatch.stop() }
        func hello() -> Bool {
            if case .success(let r) = getOnce(.tcp(port: port)), r.status == 200, r.body == "Hello, World!" { return true }
            return false
        }
        try waitUntil(20, "hello from the chroot: \(hupwatch.output)") {
            guard hupwatch.running else { throw TestFailure("hupwatch in the chroot exited: \(hupwatch.output)") }
            return hello()
        }
        hupwatch.signal(SIGHUP)
        try waitUntil(20, "generation 2 ready in the chroot: \(hupwatch.output)") { hupwatch.output.contains("generation 2 is ready") }
        #expect(hello())
        #expect(hupwatch.stop() == 0, "\(hupwatch.output)")
    }

    @Test func pipInstallSwsgiServesFlaskReloadsAndUninstallsCleanly() async throws {
        let started = Date()
        let wheel = try await wheelPath()
        let built = Date()
        let version = try sourceVersion()
        let name = URL(fileURLWithPath: wheel).lastPathComponent
        #expect(name.hasPrefix("swsgi-\(version)-py3-none-manylinux_2_") && name.hasSuffix("_x86_64.whl"), "\(name)")

        let dir = try TempDir()
        defer { dir.remove() }
        try dir.mkdir("app")
        try dir.write("app/app.py", flaskApp)
        // The second Python's venv is made meanwhile: pip's downloads and installs are most of this test's time.
        let pyenv = NSHomeDirectory() + "/.pyenv/versions"
        let second = ((try? FileManager.default.contentsOfDirectory(atPath: pyenv)) ?? [])
            .filter { $0.hasPrefix("3.13.") || $0.hasPrefix("3.12.") }.sorted().last
        async let prepared = Venv.withWheel(second.map { "\(pyenv)/\($0)/bin/python3" }, at: dir.file("v2"), wheel: wheel)
        let venv = try await Venv(dir.file("v"), base: "python3")
        let before = tree(venv.path)
        try await venv.pip(["install", wheel])

        // The programs and `python -m`, from the activated venv, found on PATH as a user types them.
        for (command, expected) in [("swsgi --version", "swsgi \(version)"), ("hupwatch --version", "hupwatch \(version)"),
                                    ("python -m swsgi --version", "swsgi \(version)"),
                                    ("python -m hupwatch --version", "hupwatch \(version)")] {
            let out = try await check(["/bin/sh", "-c", command], environment: venv.activated)
            #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == expected, "\(command)")
        }
        let meta = try await check([venv.python, "-c", "import importlib.metadata as m; d = m.metadata('swsgi'); "
                                    + "import swsgi; print(d['Version'], swsgi.__version__, d['Requires-Python'], d['License'], d['Description-Content-Type'])"])
        #expect(meta.hasPrefix("\(version) \(version) >=3.8 Apache-2.0 text/markdown"), "\(meta)")

        // venv/bin/swsgi with nothing activated: that venv's interpreter, libpython and Flask.
        let port = try freeLocalPort()
        let body = try serveOnce("'\(venv.path)/bin/swsgi' --module app:app --http-socket 127.0.0.1:\(port)",
                                 in: dir, port: port, environment: venv.plain, log: "plain.log")
        #expect(body.hasPrefix("prefix=\(venv.path) "), "\(body)")

        // Under hupwatch, activated: one reload with a small load running, not one request lost.
        let status = dir.file("status.json")
        let hupwatch = try Child(["/bin/sh", "-c", "cd '\(dir.file("app"))' && exec hupwatch --listen 127.0.0.1:\(port) "
                                  + "--status-file '\(status)' -- swsgi --module app:app --http-socket 127.0.0.1:\(port) --processes 2"],
                                 output: dir.file("hupwatch.log"), environment: venv.activated)
        defer { hupwatch.stop() }
        try waitUntil(30, "generation 1 ready: \(hupwatch.output)") { settledGeneration(status) == 1 }
        let load = LoadClient(endpoint: .tcp(port: port), concurrency: 3)
        try load.waitForMoreBlocking(50)
        load.startingReload(1)
        hupwatch.signal(SIGHUP)
        try waitUntil(30, "generation 2 serving alone: \(hupwatch.output)") { settledGeneration(status) == 2 }
        try load.waitForMoreBlocking(50)
        await load.stop()
        #expect(load.failedCount == 0, "\(load.failedCount) of \(load.completed) failed: \(load.failureSamples)")
        print("WheelTests: \(load.succeeded) requests answered across the reload, \(load.failedCount) failed")
        #expect(hupwatch.stop() == 0, "\(hupwatch.output)")

        // pip uninstall leaves the venv as it was before the wheel.
        try await venv.pip(["uninstall", "-y", "swsgi"])
        let after = tree(venv.path)
        #expect(after.subtracting(before).isEmpty, "left behind: \(after.subtracting(before).sorted())")
        #expect(before.subtracting(after).isEmpty, "removed: \(before.subtracting(after).sorted())")
        let tested = Date()

        // The same wheel in a second Python (pyenv 3.13 or 3.12, when this machine has one).
        if let second, let other = try await prepared {
            let port2 = try freeLocalPort()
            let body2 = try serveOnce("'\(other.path)/bin/swsgi' --module app:app --http-socket 127.0.0.1:\(port2)",
                                      in: dir, port: port2, environment: other.plain, log: "second.log")
            let minor = second.split(separator: ".").prefix(2).joined(separator: ".")
            #expect(body2 == "prefix=\(other.path) python=\(minor)", "\(body2)")
        } else {
            print("WheelTests: no pyenv 3.12 or 3.13 in \(pyenv): the second-Python check did not run")
        }
        let seconds = { (a: Date, b: Date) in String(format: "%.1f", b.timeIntervalSince(a)) }
        print("WheelTests: wheel \(seconds(started, built)) s (\(wheel), \(fileSize(wheel)) bytes), first venv \(seconds(built, tested)) s, "
              + "second Python (set up meanwhile) \(seconds(tested, Date())) s more")
    }
}
