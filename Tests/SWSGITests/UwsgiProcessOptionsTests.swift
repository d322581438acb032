import Foundation
import Glibc
import Testing

/// `[uwsgi]` process-level options on a real swsgi (the built-in app, no Python needed).
// Under SWSGIIntegration: it starts processes, so it runs one suite at a time with the others that do.
extension SWSGIIntegration {
@Suite struct UwsgiProcessOptions {
    private func start(_ ini: String, in dir: TempDir, ready: Bool = true) throws -> Server {
        try dir.write("app.ini", "[uwsgi]\n" + ini)
        return try Server(["--ini", dir.file("app.ini")], dir: dir, ready: ready)
    }

    /// `processes = 2*2` runs 2 workers, as uWSGI's strtol reads it, and says so once at start-up.
    @Test func aNumberIsReadAsUwsgiReadsItWithAWarning() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let s = try start("processes = 2*2\n", in: dir)
        defer { s.stop() }
        #expect(s.waitWorkers(2).count == 2, "\(s.workers)\n\(s.log)")
        #expect(try s.get("/").status == 200)
        #expect(s.log.components(separatedBy: "processes = '2*2' is not a plain number: read as 2").count - 1 == 1, "\(s.log)")
    }
}
}

extension SWSGIIntegration.UwsgiProcessOptions {
    /// `uid =` / `gid =` (empty), as uWSGI: nothing to drop to when not started as root; as root swsgi
    /// stops before binding (uWSGI: "user  not found") rather than serve as root.
    @Test func emptyUidAndGid() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        if geteuid() == 0 {
            let s = try start("processes = 1\nuid =\ngid =\n", in: dir, ready: false)
            defer { s.stop() }
            let status = s.waitExit(timeout: 10)
            #expect(status != nil && status != 0, "\(s.log)")
            #expect(s.log.contains("--uid is empty: started as root"), "\(s.log)")
            #expect(!fileExists(dir.file("s")), "refused before binding")
        } else {
            let s = try start("processes = 1\nuid =\ngid =\n", in: dir)
            defer { s.stop() }
            #expect(try s.get("/").status == 200)
            #expect(statusField(s.pid, "Uid")?.hasPrefix("\(getuid())") == true)
        }
    }
}

/// The soft and hard figures of one /proc/PID/limits line (`Max open files`).
private func limits(_ pid: pid_t, _ name: String) -> [String] {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8) else { return [] }
    for line in text.split(separator: "\n") where line.hasPrefix(name) {
        return line.dropFirst(name.count).split(separator: " ").prefix(2).map(String.init)
    }
    return []
}

extension SWSGIIntegration.UwsgiProcessOptions {
    /// limit-as and max-fd are the master's and every worker's limits; procname, procname-master and
    /// procname-append title them; cpu-affinity = 1 gives worker W CPU W-1 (uWSGI's layout).
    @Test func limitsTitlesAndCPUAffinity() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let s = try start("""
            processes = 2
            limit-as = 4096
            max-fd = 2048
            procname = myapp
            procname-master = myapp master
            procname-append = " [x]"
            cpu-affinity = 1
            """, in: dir)
        defer { s.stop() }
        var workers: [pid_t] = []
        #expect(waitUntil(10) { workers = s.workers; return workers.count == 2 && workers.allSatisfy { processTitle($0) == "myapp [x]" } },
                "\(workers.map { processTitle($0) ?? "?" })\n\(s.log)")
        #expect(processTitle(s.pid) == "myapp master [x]")
        for pid in [s.pid] + workers {
            #expect(limits(pid, "Max address space") == ["4294967296", "4294967296"], "pid \(pid)")
            #expect(limits(pid, "Max open files") == ["2048", "2048"], "pid \(pid)")
        }
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let pinned = Set(workers.compactMap { statusField($0, "Cpus_allowed_list") })
        #expect(pinned == (cores >= 2 ? ["0", "1"] : ["0"]), "\(pinned)")
        #expect(s.log.contains("mapping worker 1 to CPUs: 0"), "\(s.log)")
        #expect(try s.get("/").status == 200)
    }

    /// reload-on-as = 1 (MiB): every worker's address space is above it, so each is recycled gracefully
    /// after its request, which is answered.
    @Test func reloadOnAddressSpaceRecyclesAfterTheRequest() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let s = try start("processes = 1\nreload-on-as = 1\n", in: dir)
        defer { s.stop() }
        let before = s.workers
        #expect(try s.get("/").status == 200)
        #expect(s.waitForLog(": reload-on-as"), "\(s.log)")
        #expect(waitUntil(10) { let now = s.workers; return now.count == 1 && now != before }, "replaced: \(before) -> \(s.workers)")
    }

    /// evil-reload-on-as = 1: the master SIGKILLs a worker over it even while idle (sampled every 250 ms).
    @Test func evilReloadOnAddressSpaceKills() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let s = try start("processes = 1\nevil-reload-on-as = 1\n", in: dir, ready: false)
        defer { s.stop() }
        #expect(s.waitForLog("MiB >= --evil-reload-on-as 1 MiB: SIGKILL"), "\(s.log)")
        #expect(s.log.contains("below a fresh worker's address space"), "backs off rather than loop: \(s.log)")
    }

    /// master-as-root and cap: refused with what to do instead.
    @Test func masterAsRootAndCapAreRefused() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.ini", "[uwsgi]\nmaster-as-root = true\ncap = setgid,setuid\n")
        let (status, output) = try runToExit(["--ini", dir.file("app.ini"), "--check"], in: dir)
        #expect(status != 0)
        #expect(output.contains("master-as-root: not supported") && output.contains("cap: not supported"), "\(output)")
    }
}

extension SWSGIIntegration.UwsgiProcessOptions {
    /// uWSGI's sanitize_args: `cheaper-initial` above `processes` starts `processes` workers, and without
    /// `cheaper` it has no effect (every process starts); each says so. `cheaper` >= `processes` is refused,
    /// as uWSGI refuses it ("invalid cheaper value: must be lower than processes").
    @Test func cheaperInitialIsAdjustedAsUwsgiDoes() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let clamped = try start("processes = 3\ncheaper = 1\ncheaper-initial = 5\n", in: dir)
        defer { clamped.stop() }
        #expect(clamped.waitWorkers(3).count == 3, "\(clamped.workers)\n\(clamped.log)")
        #expect(clamped.log.contains("cheaper-initial = 5: must be between cheaper (1) and processes (3): using 3"), "\(clamped.log)")
        let dir2 = try TempDir()
        defer { dir2.remove() }
        let off = try start("processes = 2\ncheaper-initial = 1\n", in: dir2)
        defer { off.stop() }
        #expect(off.waitWorkers(2).count == 2, "\(off.workers)\n\(off.log)")
        #expect(off.log.contains("cheaper-initial = 1: no effect without cheaper"), "\(off.log)")
        try dir.write("bad.ini", "[uwsgi]\nprocesses = 2\ncheaper = 2\n")
        let (status, output) = try runToExit(["--ini", dir.file("bad.ini"), "--check"], in: dir)
        #expect(status != 0 && output.contains("--cheaper (2) must be below --processes (2)"), "\(output)")
    }
}

extension SWSGIIntegration.UwsgiProcessOptions {
    /// honour-stdin: swsgi's workers have the stdin swsgi was given (uWSGI's default would remap it).
    @Test func honourStdinWorkersInheritStdin() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("input.txt", "hello\n")
        try dir.write("app.ini", "[uwsgi]\nprocesses = 1\nhonour-stdin = true\n")
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir, shell: "exec \"$0\" \"$@\" < \(dir.file("input.txt"))")
        defer { s.stop() }
        let workers = s.waitWorkers(1)
        #expect(workers.count == 1)
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(workers[0])/fd/0")
        #expect(target == dir.file("input.txt"), "\(target)")
    }
}
