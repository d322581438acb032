import Foundation
@testable import SWSGIConfig
import Testing

/// A fixed world: the files in `files`, the variables in `env`, 4 cores.
private func world(_ files: [String: String], env: [String: String] = [:], existing: Set<String> = []) -> UwsgiConfigWorld {
    UwsgiConfigWorld(readFile: { path in
        guard let text = files[path] else { throw FileMissing() }
        return text
    }, environment: env, cores: 4, exists: { existing.contains($0) }, isFile: { existing.contains($0) },
       absolutePath: { $0.hasPrefix("/") ? $0 : "/srv/app/" + $0 }, hostname: "web1", workingDirectory: "/srv/app")
}

private func loadUwsgi(_ text: String, files: [String: String] = [:], env: [String: String] = [:], existing: Set<String> = [],
                       extra: [String] = []) throws(ConfigError) -> LoadResult {
    var all = files
    all["/srv/app/app.ini"] = text
    return try ServerOptions.load(arguments: ["--ini", "/srv/app/app.ini"] + extra, environment: [],
                                  world: world(all, env: env, existing: existing))
}

private func uwsgiOptions(_ text: String, files: [String: String] = [:], env: [String: String] = [:], existing: Set<String> = []) throws -> ServerOptions {
    guard case .run(let o) = try loadUwsgi(text, files: files, env: env, existing: existing) else {
        Issue.record("expected .run")
        return ServerOptions(cores: 4)
    }
    return o
}

private func uwsgiFailure(_ text: String, files: [String: String] = [:], env: [String: String] = [:]) -> String? {
    do {
        _ = try loadUwsgi(text, files: files, env: env)
        return nil
    } catch {
        return error.message
    }
}

@Suite struct UwsgiLanguage {
    @Test func customKeysAndPlaceholdersResolveInUwsgisOrder() throws {
        let o = try uwsgiOptions("""
            [uwsgi]
            project = shop
            base = /srv/%(project)
            chdir = %(base)
            module = %(project).wsgi:application
            # a placeholder may be defined after its use: uWSGI expands once everything is read
            pythonpath = %(lib)
            lib = %(base)/lib
            processes = %(%k * 2)
            """)
        #expect(o.python.chdir == "/srv/shop")
        #expect(o.python.module == "shop.wsgi:application")
        #expect(o.python.pythonPath == ["/srv/shop/lib"])
        #expect(o.processes == 8, "%k is the cores (4), and %( * ) multiplies")
    }

    @Test func magicVariablesAreUwsgis() throws {
        let o = try uwsgiOptions("""
            [uwsgi]
            chdir = %d
            wsgi-file = %dwsgi_%n.py
            pid-file = /run/%c/%s.%e.pid
            procname-prefix = %x%0-%1:
            """)
        #expect(o.python.chdir == "/srv/app/")
        #expect(o.python.wsgiFile == "/srv/app/wsgi_app.py")
        #expect(o.pidFile == "/run/app/app.ini.ini.pid")
        #expect(o.procnamePrefix == "srv-app:", "%x (no section given) is empty, %0 %1 the path's parts")
    }

    @Test func environmentVariablesWithDefaults() throws {
        let o = try uwsgiOptions("""
            [uwsgi]
            http-socket = :$(PORT)
            processes = $(WORKERS:-3)
            harakiri = $(UNSET-30)
            """, env: ["PORT": "8123", "WORKERS": ""])
        #expect(o.httpSocket == [HTTPSocketAddress(host: "", port: 8123)])
        #expect(o.processes == 3, "`:-` also covers an empty variable")
        #expect(o.harakiriNanoseconds == 30 * 1_000_000_000)
    }

    @Test func anUnsetVariableIsNotedByCheckAndRefusedByRun() throws {
        let ini = "[uwsgi]\nhttp-socket = :$(PORT)\n"
        guard case .check(_, let report) = try loadUwsgi(ini, extra: ["--check"]) else {
            Issue.record("--check accepts it")
            return
        }
        #expect(report.contains("depends on $(PORT)"), "\(report)")
        #expect(uwsgiFailure(ini)?.contains("$(PORT) is not set in the environment") == true)
    }

    @Test func sectionsIncludesAndInherit() throws {
        let o = try uwsgiOptions("""
            [uwsgi]
            ini = :base
            socket = /run/app.sock
            ini = common.ini:prod
            [base]
            module = site.wsgi
            chmod-socket = 660
            [dev]
            processes = 99
            """, files: ["common.ini": "[prod]\nprocesses = 6\nharakiri = 20\n[uwsgi]\nprocesses = 1\n"])
        #expect(o.python.module == "site.wsgi" && o.chmodSocket == 0o660)
        #expect(o.uwsgiSocket == [.unix("/run/app.sock")])
        #expect(o.processes == 6 && o.harakiriNanoseconds == 20_000_000_000, "file:section reads that section only")
    }

    @Test func ifEnvIfExistsElseAndFor() throws {
        let o = try uwsgiOptions("""
            [uwsgi]
            module = app
            if-env = APP_PROCESSES
            processes = %(_)
            endif =
            if-not-env = MISSING
            harakiri = 15
            endif =
            if-exists = /etc/maintenance
            harakiri = 99
            else =
            max-requests = 500
            endif =
            for = /a /b /c
            pythonpath = %(_)/lib
            endfor =
            if-env = STAGE=prod
            limit-post = 2m
            endif =
            """, env: ["APP_PROCESSES": "3", "STAGE": "dev"])
        #expect(o.processes == 3)
        #expect(o.harakiriNanoseconds == 15_000_000_000)
        #expect(o.maxRequests == 500, "else runs when if-exists failed")
        #expect(o.python.pythonPath == ["/a/lib", "/b/lib", "/c/lib"], "pythonpath accumulates, as in uWSGI")
        #expect(o.limitPostBytes == 1 << 20, "if-env NAME=VALUE compares: dev is not prod")
    }

    @Test func repeatedKeysAccumulateWhereUwsgiAccumulates() throws {
        let o = try uwsgiOptions("""
            [uwsgi]
            module = app
            env = A=1
            env = B=two words
            pythonpath = /x
            pythonpath = /y
            processes = 2
            processes = 5
            """)
        #expect(o.env == ["A=1", "B=two words"])
        #expect(o.python.pythonPath == ["/x", "/y"])
        #expect(o.processes == 5, "a single-valued option: the last one wins")
    }

    @Test func flagsReadAsUwsgiReadsThem() throws {
        let o = try uwsgiOptions("""
            [uwsgi]
            master
            disable-logging
            log-4xx = false
            log-5xx = yes
            thunder-lock
            """)
        #expect(o.disableLogging && !o.log4xx && o.log5xx)
    }

    @Test func everyProblemAtOnceEachWithFileAndLine() throws {
        let message = uwsgiFailure("""
            [uwsgi]
            proceses = 4
            harakiri = 1m
            gevent-monkey-patch = true
            ini = missing.ini
            strict = true
            """)
        let lines = message?.split(separator: "\n").map(String.init) ?? []
        #expect(lines.count == 4, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("/srv/app/app.ini:2: unknown option 'proceses' (did you mean 'processes'?) (strict = true") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("/srv/app/app.ini:3: harakiri:") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("/srv/app/app.ini:4: gevent-monkey-patch: not supported") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("/srv/app/app.ini:5: cannot read 'missing.ini'") }, "\(lines)")
    }

    @Test func aPlaceholderThatIsNoOptionIsAcceptedAndShownByCheck() throws {
        guard case .check(_, let report) = try loadUwsgi("[uwsgi]\nsitename = shop\nsocket = /tmp/%(sitename).sock\n", extra: ["--check"]) else {
            Issue.record("--check accepts it")
            return
        }
        #expect(report.contains("uwsgi-socket = /tmp/shop.sock"), "\(report)")
        #expect(report.contains("sitename = shop: placeholder"), "\(report)")
    }

    @Test func strictForbidsUndeclaredPlaceholders() {
        #expect(uwsgiFailure("[uwsgi]\nstrict = true\nsitename = shop\n")?.contains("strict") == true)
        #expect(uwsgiFailure("[uwsgi]\nstrict = true\nset-placeholder = sitename=shop\nsocket = /tmp/%(sitename).sock\n") == nil)
    }

    // MARK: Hostile configs: each one a clear error, never a crash, hang or trap.

    @Test func includeLoopsAreRefused() {
        let m = uwsgiFailure("[uwsgi]\nini = :a\n[a]\nini = :b\n[b]\nini = :a\n")
        #expect(m?.contains("includes itself") == true, "\(m ?? "accepted")")
        let files = ["/x.ini": "[uwsgi]\nini = /y.ini\n", "/y.ini": "[uwsgi]\nini = /x.ini\n"]
        #expect(uwsgiFailure("[uwsgi]\nini = /x.ini\n", files: files)?.contains("includes itself") == true)
    }

    @Test func placeholdersThatReferToThemselvesStop() {
        let m = uwsgiFailure("[uwsgi]\na = x%(a)\nchdir = %(a)\n")
        #expect(m?.contains("does not end") == true, "\(m ?? "accepted")")
        #expect(uwsgiFailure("[uwsgi]\na = %(b)%(b)\nb = %(a)%(a)\nchdir = %(a)\n")?.contains("does not end") == true)
    }

    @Test func forBombsAndHugeCountsAreBounded() {
        let tokens = Array(repeating: "x", count: 110_000).joined(separator: " ")
        #expect(uwsgiFailure("[uwsgi]\nfor = \(tokens)\npythonpath = /%(_)\nendfor =\n")?.contains("more than") == true)
        #expect(uwsgiFailure("[uwsgi]\nfor-times = 999999999999999\nenv = A=%(_)\nendfor =\n") != nil)
        let doubling = (0..<40).map { "v\($0 + 1) = %(v\($0)) %(v\($0))" }.joined(separator: "\n")
        #expect(uwsgiFailure("[uwsgi]\nv0 = x\n\(doubling)\nchdir = %(v40)\n")?.contains("does not end") == true)
    }

    /// A `for` stopped by the options bound was closed (its `endfor` just never got read): one line for
    /// the bound, no false "never closed", and no problem line that echoes a megabyte of tokens.
    @Test func aForStoppedByTheBoundIsReportedOnceAndShort() {
        let tokens = (0..<110_000).map(String.init).joined(separator: " ")
        let m = uwsgiFailure("[uwsgi]\nfor = \(tokens)\nenv = X%(_)=1\nendfor =\nmodule = app\n") ?? "accepted"
        #expect(m.contains("more than"), "\(m.prefix(200))")
        #expect(!m.contains("never closed"), "\(m.prefix(300))")
        #expect(m.utf8.count < 2_000, "the problem text is \(m.utf8.count) bytes")
    }

    @Test func unterminatedAndNestedLogicAreReported() {
        #expect(uwsgiFailure("[uwsgi]\nif-env = HOME\nprocesses = 2\n")?.contains("never closed") == true)
        #expect(uwsgiFailure("[uwsgi]\nfor = a b\nif-env = X\nendif =\n")?.contains("nested") == true)
    }

    @Test func absurdValuesAreOneLineEach() {
        #expect(uwsgiFailure("[uwsgi]\nprocesses = %(99999999999999999999 * 99999999999999)\n") != nil)
        #expect(uwsgiFailure("[uwsgi]\nenv = NOEQUALS\n")?.contains("NAME=VALUE") == true)
        #expect(uwsgiFailure("[uwsgi]\numask = 7777\n")?.contains("umask") == true)
        #expect(uwsgiFailure("[uwsgi]\nplugins = python3,gevent\n")?.contains("not built into swsgi") == true)
        // A line with no key is ignored, as uWSGI ignores it (with a warning); strict mode refuses it.
        #expect(uwsgiFailure("[uwsgi]\nstrict = true\n=======\n")?.contains("no key") == true)
    }

    @Test func randomConfigsNeverTrap() {
        // Seeded fuzz over the language's own tokens: any outcome but a trap or a hang is fine.
        let pieces = ["[uwsgi]", "[base]", "ini = :base", "ini = :uwsgi", "for = a b", "endfor =", "if-env = HOME", "endif =",
                      "else =", "a = %(a)", "b = %(a)%(c)", "c = $(HOME)", "d = @(x)", "processes = %(%k + 1)", "%(", "$(", "%",
                      "chdir = %d%n%x%0%9", "set-ph = p=%(p)", "for-times = 3", "for-readline = /nope", "x", "=", "= ="]
        var rng = SplitMix64(seed: 20)
        for round in 0..<300 {
            var text = ""
            for _ in 0..<Int(rng.next() % 12) { text += pieces[Int(rng.next() % UInt64(pieces.count))] + "\n" }
            _ = uwsgiFailure(text)
            _ = round
        }
    }
}

@Suite struct UwsgiHostileFiles {
    /// `ini =`, `@(...)` and `for-readline` of a FIFO or a device would block or never end: refused at once.
    @Test func fifosAndDevicesAreRefusedNotReadForever() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        #expect(mkfifo(dir.file("fifo"), 0o600) == 0)
        try dir.write("app.ini", "[uwsgi]\nmodule = app\nini = %dfifo\nchdir = @(/dev/zero)\nfor-readline = %dfifo\nenv = A=%(_)\nendfor =\n")
        let world = UwsgiConfigWorld.live(environment: [], cores: 2, readFile: { path in try String(contentsOfFile: path, encoding: .utf8) },
                                          runCommand: { _ in UwsgiCommandOutput(stdout: "", failure: "not run in this test") })
        let started = Date()
        var message = ""
        do {
            _ = try ServerOptions.load(arguments: ["--ini", dir.file("app.ini"), "--check"], environment: [], world: world)
        } catch {
            message = error.message
        }
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(message.contains("fifo: not a regular file"), "\(message)")
    }
}

@Suite struct UwsgiMount {
    /// uWSGI's mount rules: an empty point is /, a trailing slash is dropped, the app is a .py/.wsgi file
    /// or MODULE:CALLABLE; of two apps at one point only the first uWSGI loads is kept (with a warning).
    @Test func mountsParseAsUwsgiReadsThem() throws {
        let o = try uwsgiOptions("[uwsgi]\nmount = =x.wsgi\nmanage-script-name = true\n")
        #expect(o.python.mounts.map(\.point) == [""] && o.python.mounts[0].kind == .file("x.wsgi"))
        #expect(o.python.manageScriptName)
        // uWSGI skips an app whose mount point is taken ("mountpoint already configured"): the first one serves.
        #expect(try uwsgiOptions("[uwsgi]\nmount = /x=a:app\nmount = /x/=b:app\n").python.mounts.map(\.text) == ["/x=a:app"])
        let two = try uwsgiOptions("[uwsgi]\nmount = /=site.wsgi:application\nmount = /api/=/srv/api.py\n")
        #expect(two.python.mounts == [try Mount(parsing: "/=site.wsgi:application"), try Mount(parsing: "/api/=/srv/api.py")])
        #expect(two.python.mounts.map(\.point) == ["", "/api"])
        #expect(two.python.mounts[1].kind == .file("/srv/api.py"))
        #expect(uwsgiFailure("[uwsgi]\nmount = /api=site\n")?.contains("MODULE:CALLABLE") == true)
        let root = try uwsgiOptions("[uwsgi]\nmount = /=b.py\nmodule = a:app\n")
        #expect(root.python.module == "a:app" && root.python.mounts.isEmpty, "module is loaded before the mounts")
        #expect(try uwsgiOptions("[uwsgi]\npaste = config:/p.ini\nmodule = a:app\n").python.paste == nil)
        // uWSGI's early-* and worker-mount come to the same options; wsgi-env-behaviour is what swsgi does.
        let early = try uwsgiOptions("[uwsgi]\nmodule = a:app\nearly-pythonpath = /x\nearly-pyimport = m\nworker-mount = /w=w:app\nwsgi-env-behaviour = cheat\n")
        #expect(early.python.pythonPath == ["/x"] && early.python.sharedImports == ["m"] && early.python.mounts.map(\.point) == ["/w"])
        #expect(uwsgiFailure("[uwsgi]\nmodule = a:app\nwsgi-env-behavior = other\n")?.contains("holy") == true)
        #expect(uwsgiFailure("[uwsgi]\npaste = /srv/app.ini\n")?.contains("like config:/srv/app.ini") == true)
    }
}

@Suite struct UwsgiValueSources {
    /// A world whose `@(exec://...)` answers from `commands` (a failure for any other command).
    private func load(_ text: String, check: Bool = false, commands: [String: UwsgiCommandOutput]) throws(ConfigError) -> LoadResult {
        var w = UwsgiConfigWorld(readFile: { path in
            guard path == "/srv/app/app.ini" else { throw FileMissing() }
            return text
        }, environment: [:], cores: 4)
        w.runCommand = { commands[$0] ?? UwsgiCommandOutput(stdout: "", failure: "exited with status 127 (command not found)") }
        return try ServerOptions.load(arguments: ["--ini", "/srv/app/app.ini"] + (check ? ["--check"] : []), environment: [], world: w)
    }

    /// uWSGI's uwsgi_at_file_read drops exactly one final `\n` or `\r` of what the command printed, and
    /// the `@` pass runs after `$(...)`, before `%(...)`.
    @Test func execTakesTheOutputWithOneNewlineDropped() throws {
        let ok = { (s: String) in UwsgiCommandOutput(stdout: s, failure: nil) }
        let result = try load("[uwsgi]\nmodule = app\nenv = A=@(exec://a)\nenv = B=@(exec://b)\nbase = /srv\nchdir = %(base)/@(exec://d)\n",
                              commands: ["a": ok("one\n"), "b": ok("two\n\n"), "d": ok("site")])
        guard case .run(let o) = result else { Issue.record("\(result)"); return }
        #expect(o.env == ["A=one", "B=two\n"], "\(o.env)")
        #expect(o.python.chdir == "/srv/site")
    }

    /// `@(FILE)`: uWSGI's uwsgi_open_and_read exits when the file cannot be opened, and uwsgi_at_file_read
    /// drops one final newline. A missing file is an error naming it; `--check` warns (the file may be
    /// on the machine the config is for).
    @Test func aFileValueThatCannotBeReadIsAnErrorAndACheckWarning() throws {
        var w = UwsgiConfigWorld(readFile: { path in
            switch path {
            case "/srv/app/app.ini": return "[uwsgi]\nmodule = app\nenv = A=@(/srv/app/a.txt)\nenv = S=@(/srv/app/secret)\n"
            case "/srv/app/a.txt": return "one\n\n"
            default: throw FileMissing()
            }
        }, environment: [:], cores: 4)
        w.runCommand = { _ in UwsgiCommandOutput(stdout: "", failure: "not run") }
        do {
            _ = try ServerOptions.load(arguments: ["--ini", "/srv/app/app.ini"], environment: [], world: w)
            Issue.record("loaded")
        } catch {
            #expect(error.message.hasPrefix("/srv/app/app.ini:4: @(/srv/app/secret): cannot read"), "\(error.message)")
        }
        let checked = try ServerOptions.load(arguments: ["--ini", "/srv/app/app.ini", "--check"], environment: [], world: w)
        guard case .check(let o, _) = checked else { Issue.record("\(checked)"); return }
        #expect(o.env.first == "A=one\n", "one final newline dropped, as uWSGI: \(o.env)")
        #expect(o.configWarnings.contains { $0.hasPrefix("/srv/app/app.ini:4: @(/srv/app/secret): cannot read") }, "\(o.configWarnings)")
    }

    /// A failing command stops the load naming it, its status and its output; `--check` warns instead.
    @Test func aFailingCommandIsAnErrorAndACheckWarning() throws {
        let failing = ["x": UwsgiCommandOutput(stdout: "half", failure: "exited with status 3")]
        do {
            _ = try load("[uwsgi]\nmodule = app\nlogto = /var/log/@(exec://x).log\n", commands: failing)
            Issue.record("loaded")
        } catch {
            #expect(error.message == "/srv/app/app.ini:3: @(exec://x): the command exited with status 3 (it printed 'half'); fix the command or write the value out")
        }
        let checked = try load("[uwsgi]\nmodule = app\nlogto = /var/log/@(exec://x).log\n", check: true, commands: failing)
        guard case .check(let o, let report) = checked else { Issue.record("\(checked)"); return }
        #expect(o.configWarnings.contains("/srv/app/app.ini:3: @(exec://x): the command exited with status 3 here; the value is checked when swsgi starts"), "\(o.configWarnings)")
        #expect(report.contains("; logto = /var/log/@(exec://x).log: depends on @(exec://x).log..., which failed here"), "\(report)")
        #expect(o.logTo == nil)
    }

    /// `--check` leaves to the start only a value whose command failed here: `@(exec://` never closed (no
    /// command runs, the text is the value, as in uWSGI), also when a command that succeeded printed it, is
    /// checked as the start will read it, with no note claiming a failure.
    @Test func checkSkipsOnlyValuesWhoseCommandFailed() throws {
        let printed = ["p": UwsgiCommandOutput(stdout: "-3 @(exec://q", failure: nil)]
        for (line, problem) in [("processes = @(exec://p)", "processes"), ("processes = -2 @(exec://", "processes"), ("harakiri = 5x @(exec://echo 30", nil)] {
            let text = "[uwsgi]\nmodule = app\n\(line)\n"
            var checkProblem: String? = nil
            var report = ""
            do {
                if case .check(_, let r) = try load(text, check: true, commands: printed) { report = r }
            } catch {
                checkProblem = error.message
            }
            #expect(!report.contains("failed here"), "\(line): \(report)")
            var startProblem: String? = nil
            do { _ = try load(text, commands: printed) } catch { startProblem = error.message }
            #expect(checkProblem == startProblem, "\(line): --check \(checkProblem ?? "valid"), start \(startProblem ?? "valid")")
            #expect(problem.map { checkProblem?.contains($0) == true } ?? (checkProblem == nil), "\(line): \(checkProblem ?? "valid")")
        }
    }

    /// uWSGI's other schemes: each refused with one line saying what to write instead.
    @Test(arguments: ["http://h/x", "sym://s", "section://s", "data://0", "call://f", "callint://f", "fd://3", "emperor://x", "file:///etc/x"])
    func otherSchemesAreRefused(_ source: String) {
        do {
            _ = try load("[uwsgi]\nmodule = app\nchdir = @(\(source))\n", check: true, commands: [:])
            Issue.record("accepted \(source)")
        } catch {
            #expect(error.message.hasPrefix("/srv/app/app.ini:3: @(\(source)): ") && !error.message.contains("\n"), "\(error.message)")
        }
    }

    /// `module = PATH` (a `/` or `.py`): the file as wsgi-file, with a warning; `mysite.wsgi` stays a module,
    /// and so does text after a space (`app //comment` fails to import at load, as in uWSGI).
    @Test func moduleForms() throws {
        func loaded(_ value: String) throws -> ServerOptions {
            guard case .run(let o) = try load("[uwsgi]\nmodule = \(value)\n", commands: [:]) else { throw ConfigError("not run") }
            return o
        }
        let file = try loaded("/srv/site/app.wsgi")
        #expect(file.python.wsgiFile == "/srv/site/app.wsgi" && file.python.module == nil)
        #expect(file.configWarnings.first?.contains("module = '/srv/site/app.wsgi' is a file path, not a module name") == true, "\(file.configWarnings)")
        let callable = try loaded("deploy/wsgi.py:app")
        #expect(callable.python.wsgiFile == "deploy/wsgi.py" && callable.python.callable == "app")
        #expect(try loaded("app.py").python.wsgiFile == "app.py")
        for module in ["mysite.wsgi", "pkg.app:create_app()", "app:app"] {
            let o = try loaded(module)
            #expect(o.python.module == module && o.python.wsgiFile == nil && o.configWarnings.isEmpty, "\(module): \(o.configWarnings)")
        }
        let comment = try loaded("test.wsgi:application //the wsgi module")
        #expect(comment.python.module == "test.wsgi:application //the wsgi module")
        #expect(comment.configWarnings == ["--module 'test.wsgi:application //the wsgi module': the callable 'application //the wsgi module' is not a Python identifier (or a factory to call, NAME()): loading the app will fail (no attribute has that name), as it does under uWSGI"])
        let spaced = try loaded("mysite.wsgi //comment")
        #expect(spaced.python.module == "mysite.wsgi //comment" && spaced.configWarnings.first?.contains("is not a module name like pkg.app") == true)
    }

    /// A path as `module` beside a `wsgi-file`: uWSGI's module cannot import the path, so the wsgi-file is
    /// the app it serves, in either order; the module line is named as not loaded. Only the last `module`
    /// counts (uWSGI keeps one), so a path given after a module name is the file swsgi loads.
    @Test func aPathAsModuleNeverDisplacesAWsgiFile() throws {
        func loaded(_ lines: String) throws -> ServerOptions {
            guard case .run(let o) = try load("[uwsgi]\n" + lines, commands: [:]) else { throw ConfigError("not run") }
            return o
        }
        for lines in ["wsgi-file = real.py\nmodule = other.py\n", "module = other.py:app\nwsgi-file = real.py\n"] {
            let o = try loaded(lines)
            #expect(o.python.wsgiFile == "real.py" && o.python.module == nil && o.python.callable == "application", "\(lines): \(o.python)")
            #expect(o.configWarnings.contains { $0.contains("not loaded") && $0.contains("wsgi-file = 'real.py'") }, "\(lines): \(o.configWarnings)")
        }
        let later = try loaded("module = pkg.app\nmodule = other.py\n")
        #expect(later.python.wsgiFile == "other.py" && later.python.module == nil, "\(later.python)")
        let name = try loaded("module = other.py\nmodule = pkg.app\n")
        #expect(name.python.module == "pkg.app" && name.python.wsgiFile == nil, "\(name.python)")
    }
}
