import Foundation
import Glibc

// Processes a test cannot know by pid (what supervisors start: runsv, gunicorn's workers, ...) are found by
// a marker: `childEnvironment(marker: dir.path)` puts HWSUP_TEST_DIR and HWSUP_TEST_PID in the environment
// every descendant inherits.

/// Live (not zombie) processes of this test: the test's folder in their command line or their
/// environment (every process the test's supervisors start inherits HWSUP_TEST_DIR).
public func markedProcesses(_ dir: TempDir) -> [ProcEntry] {
    let me = getpid()
    let found = allPids().compactMap { pid -> ProcEntry? in
        guard pid != me, let e = procEntry(pid), e.state != "Z", e.state != "X" else { return nil }
        if e.cmdline.contains(dir.path) { return e }
        if let env = readProcFile("/proc/\(pid)/environ"), env.contains("HWSUP_TEST_DIR=\(dir.path)\0") { return e }
        return nil
    }
    dir.seen(found.map(\.pid))
    return found
}

/// Last resort at the end of a test: SIGKILL whatever of this test is still alive.
/// Only processes carrying the test's folder path are touched.
@discardableResult
public func killMarked(_ dir: TempDir) -> [ProcEntry] {
    let left = markedProcesses(dir)
    for p in left { kill(p.pid, SIGKILL) }
    return left
}

/// Stops every child and every marked process, then removes the folder. Called on every path.
public func tearDown(_ dir: TempDir, children: [Child?]) async {
    for c in children.compactMap({ $0 }) where c.running { c.signal(SIGKILL) }
    killMarked(dir)
    try? await waitFor("test processes to go", timeout: 10) {
        for c in children.compactMap({ $0 }) { c.poll() }
        return markedProcesses(dir).isEmpty
    }
    for c in children.compactMap({ $0 }) { c.poll() }
    dir.reapSeen()
    dir.remove()
}

/// A test process that died (killed, crashed) before its tear-down leaves its supervisors running.
/// Their processes carry HWSUP_TEST_DIR and HWSUP_TEST_PID: those whose test process is gone are
/// SIGKILLed and their folders removed. Nothing without both markers is touched.
public func sweepLeftoversOfDeadRuns() {
    let me = getpid()
    var deadDirs: Set<String> = []
    for pid in allPids() where pid != me {
        guard let env = readProcFile("/proc/\(pid)/environ") else { continue }
        let vars = env.split(separator: "\0")
        guard let dir = vars.first(where: { $0.hasPrefix("HWSUP_TEST_DIR=" + TempDir.prefix) })?.dropFirst("HWSUP_TEST_DIR=".count),
              let owner = vars.first(where: { $0.hasPrefix("HWSUP_TEST_PID=") }).flatMap({ pid_t($0.dropFirst("HWSUP_TEST_PID=".count)) }),
              owner != me else { continue }
        let ownerAlive = procEntry(owner).map { $0.state != "Z" && $0.cmdline.contains("PackageTests") } ?? false
        if ownerAlive { continue }
        kill(pid, SIGKILL)
        deadDirs.insert(String(dir))
    }
    for dir in deadDirs { try? FileManager.default.removeItem(atPath: dir) }
}

private let sweptOnce: Bool = {
    sweepLeftoversOfDeadRuns()
    return true
}()

/// Sweeps once per test process (runs that died before this one started are all found the first time).
func sweepLeftoversOfDeadRunsOnce() { _ = sweptOnce }
