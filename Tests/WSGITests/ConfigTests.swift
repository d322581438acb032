import Foundation
import Glibc
import Testing

/// Runs swsgi expecting it to stop by itself: exit status, log, and whether its socket was bound.
func runPythonToExit(_ args: [String], environment: [String: String] = [:], python: PythonUnderTest = .debian,
                     setUp: (TempDir) throws -> [String: String] = writeProbe) throws -> (status: Int32, log: String, bound: Bool) {
    let dir = try TempDir()
    defer { dir.remove() }
    // The set-up's own variables win (a fake python3 on PATH, say).
    var env = python.environment
    env.merge(environment) { _, b in b }
    env.merge(try setUp(dir)) { _, b in b }
    let s = try Server(args.map { $0.replacingOccurrences(of: "{dir}", with: dir.path) }, dir: dir, environment: env, ready: false)
    defer { s.stop(timeout: 1) }
    guard let status = s.waitExit(timeout: 20) else { throw TestFailure("swsgi \(args) still running; log:\n\(s.log)") }
    return (status, s.log, fileExists(dir.file("s")))
}

extension WSGIIntegration {
    @Suite struct Configuration {
        @Test(arguments: [
            (["--threads", "257"], "--threads 257: give 1 to 256 request threads per worker"),
            (["--threads", "0"], "--threads 0: give 1 to 256 request threads per worker"),
            (["--threads", "99999999999999999999"], "too large"),
            (["--callable", ""], "needs a value"),
            (["--wsgi-file", "a.py", "--module", "probe"], "give one"),
            (["--need-app=false"], "not supported"),
            (["--py-call-osafterfork=no"], "not supported"),
            (["--py-callos-afterfork"], "did you mean '--py-call-osafterfork'"),
        ])
        func absurdValuesAreRefusedWithOneLine(_ extra: [String], _ message: String) throws {
            var args = ["--processes", "1", "--wsgi-file", "{dir}/probe.py"] + extra
            if extra.contains("--module") { args.removeFirst(4) }
            let r = try runPythonToExit(args)
            #expect(r.status == 2, "exit status \(r.status): \(r.log)")
            #expect(r.log.contains(message), "\(r.log)")
            #expect(r.log.split(separator: "\n").count == 1, "one line: \(r.log)")
            #expect(!r.bound)
        }

        @Test func threadsOneIsAccepted() throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--threads", "1", "--enable-threads"]) { s, _ throws in
                #expect(try s.get("/").status == 200)
            }
        }

        @Test(arguments: [
            (["--module", "no_such_module_here"], "ModuleNotFoundError"),
            (["--wsgi-file", "{dir}/missing.py"], "no such file"),
            (["--wsgi-file", "{dir}/probe.py", "--callable", "nothing_here"], "defines no 'nothing_here'"),
            (["--wsgi-file", "{dir}/probe.py", "--callable", "MARKERS"], "not a WSGI callable"),
            (["--wsgi-file", "{dir}/probe.py", "--env-fail"], "PROBE_FAIL_IMPORT"),
            // Names no app can have: valid configuration (a warning), failing at load as under uWSGI.
            (["--wsgi-file", "{dir}/probe.py", "--callable", "not valid"], "defines no 'not valid'"),
            (["--module", "probe:app:extra"], "has no 'app:extra'"),
            (["--module", "../etc/passwd"], "'../etc/passwd'"),
        ])
        func anAppThatCannotLoadStopsSwsgiBeforeBinding(_ args: [String], _ message: String) throws {
            let failImport = args.contains("--env-fail")
            let r = try runPythonToExit(["--processes", "1", "--chdir", "{dir}"] + args.filter { $0 != "--env-fail" },
                                        environment: failImport ? ["PROBE_FAIL_IMPORT": "1"] : [:])
            #expect(r.status == 1, "exit status \(r.status): \(r.log)")
            #expect(r.log.contains(message), "\(r.log)")
            #expect(r.log.contains("the WSGI app could not be loaded"))
            #expect(!r.bound, "nothing is bound when the app cannot load")
        }

        @Test func lazyAppsImportInEachWorkerAndAFailureStopsSwsgi() throws {
            try withPython(["--processes", "2", "--wsgi-file", "{dir}/probe.py", "--lazy-apps"]) { s, dir throws in
                let workers = Set(s.waitWorkers(2))
                let imported = Set(((try? String(contentsOfFile: dir.file("markers/imported"), encoding: .utf8)) ?? "")
                    .split(separator: "\n").compactMap { Int32($0) })
                #expect(imported == workers, "imported in \(imported), workers \(workers)")
                #expect(!imported.contains(s.pid), "the master never imported the app")
            }
            try withPython(["--processes", "2", "--wsgi-file", "{dir}/probe.py"]) { s, dir throws in
                let imported = ((try? String(contentsOfFile: dir.file("markers/imported"), encoding: .utf8)) ?? "")
                #expect(imported == "\(s.pid)\n", "without --lazy-apps the master imports once, before fork")
            }
            let r = try runPythonToExit(["--processes", "2", "--wsgi-file", "{dir}/probe.py", "--lazy-apps"],
                                        environment: ["PROBE_FAIL_IMPORT": "1"])
            #expect(r.status == 22, "exit status \(r.status): \(r.log)")
            #expect(r.log.contains("could not load the app"))
            #expect(r.log.components(separatedBy: "ImportError: the probe refuses").count - 1 <= 2, "no respawn loop")
        }

        @Test func aLibraryThatIsNotLibpythonIsOneClearLine() throws {
            let notALibrary = try runPythonToExit(["--wsgi-file", "{dir}/probe.py", "--python-lib", "/etc/passwd"])
            #expect(notALibrary.status == 1)
            #expect(notALibrary.log.contains("cannot load libpython /etc/passwd"), "\(notALibrary.log)")
            let libc = try runPythonToExit(["--wsgi-file", "{dir}/probe.py", "--python-lib", "/lib/x86_64-linux-gnu/libc.so.6"])
            #expect(libc.status == 1)
            #expect(libc.log.contains("not a usable libpython") && libc.log.contains("Py_InitializeEx"), "\(libc.log)")
            let missing = try runPythonToExit(["--wsgi-file", "{dir}/probe.py", "--python-lib", "{dir}/nope.so"])
            #expect(missing.status == 1 && missing.log.contains("nope.so"))
            for r in [notALibrary, libc, missing] { #expect(r.log.split(separator: "\n").count == 1, "one line: \(r.log)"); #expect(!r.bound) }
        }

        @Test func anInterpreterWithoutASharedLibrarySaysHowToInstallIt() throws {
            // A python3 that answers like Debian's without the libpython3.11 package.
            let r = try runPythonToExit(["--wsgi-file", "{dir}/probe.py"]) { dir in
                var env = try writeProbe(dir)
                try FileManager.default.createDirectory(atPath: dir.file("fake"), withIntermediateDirectories: true)
                try dir.write("fake/python3", "#!/bin/sh\nprintf '/nowhere/lib\\0libpython3.11.so.1.0\\0libpython3.11.so\\0003.11\\0/usr\\0/usr\\0/usr/bin/python3\\0001\\0/usr\\0003.11.2\\0/usr/lib/python3.11'\n")
                chmod(dir.file("fake/python3"), 0o755)
                env["PATH"] = dir.file("fake") + ":/bin"
                return env
            }
            #expect(r.status == 1)
            #expect(r.log.contains("apt-get install libpython3.11") && r.log.contains("--python-lib"), "\(r.log)")
            #expect(r.log.split(separator: "\n").count == 1, "one line: \(r.log)")
            let none = try runPythonToExit(["--wsgi-file", "{dir}/probe.py"], environment: ["PATH": "/nonexistent"])
            #expect(none.status == 1 && none.log.contains("no python3 on PATH"), "\(none.log)")
        }

        /// A python3 on PATH answering the locator's query with `fields` (NUL-separated, sys.path last).
        static func fakePython(_ fields: [String]) -> (TempDir) throws -> [String: String] {
            { dir in
                var env = try writeProbe(dir)
                try FileManager.default.createDirectory(atPath: dir.file("fake"), withIntermediateDirectories: true)
                let octal = fields.map { $0.replacingOccurrences(of: "%", with: "%%") }.joined(separator: "\\000")
                try dir.write("fake/python3", "#!/bin/sh\nprintf '\(octal)'\n")
                chmod(dir.file("fake/python3"), 0o755)
                env["PATH"] = dir.file("fake") + ":/bin"
                return env
            }
        }

        @Test func aPythonBuiltWithoutSharedLibrarySaysTheCommandThatFixesIt() throws {
            // pyenv's default build (no --enable-shared): LDLIBRARY is the static archive.
            let pyenv = try runPythonToExit(["--wsgi-file", "{dir}/probe.py"], setUp: Self.fakePython(
                ["/home/u/.pyenv/versions/3.12.1/lib", "libpython3.12.a", "libpython3.12.a", "3.12", "/srv/venv", "/srv/venv",
                 "/srv/venv/bin/python3", "0", "/home/u/.pyenv/versions/3.12.1", "3.12.1", "/srv/venv/lib/python3.12/site-packages"]))
            #expect(pyenv.status == 1 && !pyenv.bound)
            #expect(pyenv.log.contains("(Python 3.12.1 from /home/u/.pyenv/versions/3.12.1) has no shared libpython: "
                                       + "it was built without --enable-shared (LDLIBRARY=libpython3.12.a); reinstall it with one: "
                                       + "env PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install --force 3.12.1"), "\(pyenv.log)")
            // A source build in /opt: configure's flag.
            let source = try runPythonToExit(["--wsgi-file", "{dir}/probe.py"], setUp: Self.fakePython(
                ["/opt/py/lib", "libpython3.13.a", "libpython3.13.a", "3.13", "/opt/py", "/opt/py", "/opt/py/bin/python3", "0",
                 "/opt/py", "3.13.0", "/opt/py/lib/python3.13"]))
            #expect(source.status == 1 && source.log.contains("rebuild it with ./configure --enable-shared"), "\(source.log)")
            for r in [pyenv, source] {
                #expect(r.log.split(separator: "\n").count == 1, "one line: \(r.log)")
                #expect(r.log.contains("--python-lib PATH"), "\(r.log)")
            }
        }

        /// `pip install swsgi` into a virtualenv: swsgi run as venv/bin/swsgi (nothing activated, no python3
        /// on PATH) hosts the app with that venv's interpreter; a swsgi from elsewhere uses the activated one.
        @Test func theVirtualenvSwsgiIsInstalledInOrTheActivatedOneNeedsNoFlags() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let env = try writeProbe(dir)
            let made = try runCommand("/usr/bin/python3", ["-m", "venv", "--without-pip", dir.file("venv")])
            try #require(made.status == 0, "python3 -m venv: \(made.output)")
            try FileManager.default.copyItem(atPath: try swsgiBinary(), toPath: dir.file("venv/bin/swsgi"))
            func prefix(_ s: Server) throws -> String? {
                let sys = try JSONSerialization.jsonObject(with: Data(try s.get("/sys").body)) as? [String: Any]
                return sys?["prefix"] as? String
            }
            var plain = env
            plain["PATH"] = "/nonexistent"
            let installed = try Server(["--processes", "1", "--wsgi-file", "{dir}/probe.py"], dir: dir, socket: "s1",
                                       environment: plain, shell: "exec \(dir.file("venv/bin/swsgi")) \"$@\"", name: "installed")
            #expect(try prefix(installed) == dir.file("venv"), "\(installed.log)")
            installed.stop()
            // Activated: VIRTUAL_ENV names it while PATH's python3 is Debian's (prefix /usr).
            var activated = env
            activated["PATH"] = "/usr/bin:/bin"
            activated["VIRTUAL_ENV"] = dir.file("venv")
            let elsewhere = try Server(["--processes", "1", "--wsgi-file", "{dir}/probe.py"], dir: dir, socket: "s2",
                                       environment: activated, name: "activated")
            #expect(try prefix(elsewhere) == dir.file("venv"), "\(elsewhere.log)")
            elsewhere.stop()
            // Installed into a Python prefix (a pyenv version, /usr/local): the python3 beside swsgi.
            try FileManager.default.createDirectory(atPath: dir.file("prefix/bin"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: try swsgiBinary(), toPath: dir.file("prefix/bin/swsgi"))
            try FileManager.default.createSymbolicLink(atPath: dir.file("prefix/bin/python3"), withDestinationPath: "/usr/bin/python3")
            let beside = try Server(["--processes", "1", "--wsgi-file", "{dir}/probe.py"], dir: dir, socket: "s3",
                                    environment: plain, shell: "exec \(dir.file("prefix/bin/swsgi")) \"$@\"", name: "beside")
            #expect(try prefix(beside) == "/usr", "\(beside.log)")
            beside.stop()
            // A stale VIRTUAL_ENV is an error, not a silent switch to another Python.
            let stale = try runPythonToExit(["--wsgi-file", "{dir}/probe.py"], environment: ["VIRTUAL_ENV": dir.file("gone")])
            #expect(stale.status == 1 && !stale.bound, "\(stale.log)")
            #expect(stale.log.contains("VIRTUAL_ENV=\(dir.file("gone")) (the activated virtualenv) has no bin/python3"), "\(stale.log)")
        }

        @Test func explicitLibraryAndVirtualenvHome() throws {
            // --python-lib alone: the library's own prefix and sys.path.
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--python-lib",
                            "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"], environment: ["PATH": "/nonexistent"]) { s, _ throws in
                let sys = try #require(try JSONSerialization.jsonObject(with: Data(try s.get("/sys").body)) as? [String: Any])
                #expect(sys["prefix"] as? String == "/usr")
                #expect((sys["version"] as? String)?.hasPrefix("3.11.2") == true)
            }
            // --home VENV: that virtualenv's prefix and site-packages, its base interpreter's library.
            let dir = try TempDir()
            defer { dir.remove() }
            let made = try runCommand("/usr/bin/python3", ["-m", "venv", "--without-pip", dir.file("venv")])
            try #require(made.status == 0, "python3 -m venv: \(made.output)")
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--venv", dir.file("venv"),
                            "--pythonpath", "/opt/first", "--pythonpath", "/opt/second"], environment: ["PATH": "/nonexistent"]) { s, _ throws in
                let sys = try #require(try JSONSerialization.jsonObject(with: Data(try s.get("/sys").body)) as? [String: Any])
                #expect(sys["prefix"] as? String == dir.file("venv"))
                let path = sys["path"] as? [String] ?? []
                #expect(path.prefix(2) == ["/opt/first", "/opt/second"], "--pythonpath goes first, in order: \(path)")
                #expect(path.contains(dir.file("venv/lib/python3.11/site-packages")), "\(path)")
            }
            let notADir = try runPythonToExit(["--wsgi-file", "{dir}/probe.py", "--home", "/nonexistent/venv"])
            #expect(notADir.status == 1 && notADir.log.contains("--home /nonexistent/venv: not a directory"), "\(notADir.log)")
        }
    }
}
