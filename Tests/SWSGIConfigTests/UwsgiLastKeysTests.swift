@testable import SWSGIConfig
import Testing

/// gevent/async, enable-threads = false, vacuum = false, lines with no key (and merge-conflict markers),
/// `env = NAME = VALUE`: what each `[uwsgi]` line comes to, and the one warning each prints.
@Suite struct UwsgiLastKeys {
    private func run(_ lines: String) throws -> ServerOptions {
        try options(["--ini", "app.ini"], ini: "[uwsgi]\nmodule = app\n" + lines)
    }

    /// gevent = N (uWSGI's async cores on the gevent loop) and async = N: N request threads per worker,
    /// the larger of N and threads, at most 256; one warning naming the line each time.
    @Test(arguments: [
        ("gevent = 100", 100, "app.ini:3: gevent = 100: served by 100 request threads per worker; swsgi has no gevent loop"),
        ("async = 30\nugreen = ''", 30, "app.ini:3: async = 30: served by 30 request threads per worker; swsgi has no async loop"),
        ("gevent = 400  # greenlets", 256,
         "app.ini:3: gevent = 400: served by 256 request threads per worker, swsgi's maximum (more would mostly wait for the GIL: add processes for more); swsgi has no gevent loop"),
        ("threads = 8\ngevent = 4", 8,
         "app.ini:4: gevent = 4: served by 8 request threads per worker (the larger of gevent = 4 and threads = 8); swsgi has no gevent loop"),
        ("gevent = 50\nthreads = 1", 50,
         "app.ini:3: gevent = 50: served by 50 request threads per worker (the larger of gevent = 50 and threads = 1); swsgi has no gevent loop"),
        ("gevent = 0", 1, "app.ini:3: gevent = 0: served by 1 request thread per worker; swsgi has no gevent loop"),
    ])
    func asyncCoresBecomeRequestThreads(_ lines: String, _ threads: Int, _ warning: String) throws {
        let o = try run(lines)
        #expect(o.python.threads == threads)
        #expect(o.configWarnings == [warning], "\(o.configWarnings)")
    }

    /// The command line still wins over the file, as for every option.
    @Test func theCommandLineWins() throws {
        let o = try options(["--ini", "app.ini", "--threads", "3"], ini: "[uwsgi]\nmodule = app\ngevent = 100\n")
        #expect(o.python.threads == 3)
    }

    /// Monkey-patching and WebSockets are refused only when on (uWSGI reads these flags so: `= false` is off).
    @Test func monkeyPatchAndWebsocketsOffAreAccepted() throws {
        let o = try run("gevent = 10\ngevent-monkey-patch = false\ngevent-early-monkey-patch = 0\nhttp-websockets = off\n")
        #expect(o.python.threads == 10)
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\nmodule = app\ngevent-early-monkey-patch = true\n")?
            .hasPrefix("app.ini:3: gevent-early-monkey-patch: not supported: swsgi serves gevent = N with request threads") == true)
    }

    /// enable-threads = false: accepted; app threads run between requests anyway, and the warning says so.
    @Test func enableThreadsFalseIsAcceptedWithAWarning() throws {
        let o = try run("enable-threads = false\n")
        #expect(!o.python.enableThreads)
        #expect(o.configWarnings == ["app.ini:3: enable-threads = false: threads the app starts still run between requests (swsgi releases the GIL whenever a worker waits); "
                                     + "uWSGI's false stops them while the worker is idle (it keeps the GIL): a difference in the app's favour"],
                "\(o.configWarnings)")
        #expect(try options(["--module", "app", "--enable-threads=false"]).configWarnings.first?.hasPrefix("--enable-threads = false: threads the app starts") == true)
        #expect(try run("enable-threads = true\n").configWarnings.isEmpty)
    }

    /// vacuum is swsgi's --vacuum (on by default); `vacuum = false` turns it off.
    @Test func vacuum() throws {
        #expect(try run("").vacuum)
        #expect(try run("vacuum = true\n").vacuum)
        #expect(try !run("vacuum = false\n").vacuum)
        #expect(try !options(["--vacuum=false"]).vacuum)
    }

    /// `= value` and a merge conflict left in the file: uWSGI's ini reader passes the key "" (and
    /// `<<<<<<< HEAD` as a key of that name), which it ignores as an unknown option; strict mode refuses them.
    @Test func linesWithNoKeyAndMergeMarkersAreIgnoredWithAWarning() throws {
        let ini = """
            [uwsgi]
            = 4
            <<<<<<< HEAD
            chdir = /www/app
            =======
            chdir = /home/app
            >>>>>>> fixed paths
            module = app
            """
        let o = try options(["--ini", "app.ini"], ini: ini)
        #expect(o.python.chdir == "/home/app", "both sides are read, the later wins, as in uWSGI")
        #expect(o.configWarnings == [
            "app.ini:2: no key before '=': ignored, as uWSGI ignores it",
            "app.ini:3: '<<<<<<< HEAD' is a merge-conflict marker: ignored, as uWSGI ignores it (both sides of the conflict are read: where both give a key, the later line wins)",
            "app.ini:5: no key before '=': ignored, as uWSGI ignores it (both sides of the conflict are read: where both give a key, the later line wins)",
            "app.ini:7: '>>>>>>> fixed paths' is a merge-conflict marker: ignored, as uWSGI ignores it (both sides of the conflict are read: where both give a key, the later line wins)",
        ], "\(o.configWarnings)")
        let strict = failure(["--ini", "app.ini"], ini: ini + "\nstrict = true\n")?.split(separator: "\n") ?? []
        #expect(strict.count == 4, "\(strict)")
        #expect(strict.first == "app.ini:2: no key before '=': refused with strict = true, as uWSGI's strict mode refuses it (an unknown option)")
        // The [swsgi] section keeps its own strict reading.
        #expect(failure(["--ini", "app.ini"], ini: "[swsgi]\n= 4\n") == "app.ini:2: malformed line '= 4' (no key before =)")
    }

    /// `env = NAME = VALUE`: NAME=VALUE, with a warning that uWSGI would have set 'NAME ' instead.
    /// Without a space before '=' the value is kept byte for byte (`NAME= x` is " x", as uWSGI sets it).
    @Test func envWithSpacesAroundTheEqualsSign() throws {
        let o = try run("env = DJANGO_SETTINGS_MODULE = ins.settings\nenv = A=1\nenv = B= two\nenv = C =three\n")
        #expect(o.env == ["DJANGO_SETTINGS_MODULE=ins.settings", "A=1", "B= two", "C=three"])
        #expect(o.configWarnings.count == 2, "\(o.configWarnings)")
        #expect(o.configWarnings.first == "app.ini:3: env = 'DJANGO_SETTINGS_MODULE = ins.settings': sets DJANGO_SETTINGS_MODULE='ins.settings' "
                + "(the spaces around '=' dropped); uWSGI would set a variable named 'DJANGO_SETTINGS_MODULE ', with the space, which the app does not find as DJANGO_SETTINGS_MODULE")
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\nmodule = app\nenv = MY VAR = 1\n") == "--env 'MY VAR=1': expected NAME=VALUE")
    }
}
