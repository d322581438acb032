import Foundation
import Glibc
import Testing

// systemd cannot boot here, so the test stands in for it: it reads the example unit files, runs
// their ExecStart the way systemd would (NOTIFY_SOCKET pointing at a datagram socket the test
// bound; for the socket-activated variant a listener on fd 3 with LISTEN_FDS=1 and LISTEN_PID =
// hupwatch's pid), reloads with their ExecReload and stops with KillSignal to the main pid only
// (KillMode=mixed), and checks what hupwatch tells "systemd", with the sender's credentials as
// NotifyAccess=main would check them. `systemd-analyze verify` checks the unit files themselves.

/// `Key=value` settings of a unit file, in order (comments and sections skipped).
func unitSettings(_ text: String, _ key: String) -> [String] {
    text.split(separator: "\n").compactMap { line -> String? in
        let l = line.trimmingCharacters(in: .whitespaces)
        guard l.hasPrefix(key + "=") else { return nil }
        return String(l.dropFirst(key.count + 1))
    }
}

/// Checks the notify messages of a run with `reloads` reloads and a stop, in order and exactly.
/// Returns the serving pids the READY=1 lines named.
func expectNotifySequence(_ notify: NotifySocket, hupwatch: pid_t, reloads: Int, startedAt: UInt64, endedAt: UInt64) {
    notify.drain()
    let msgs = notify.received
    #expect(msgs.allSatisfy { $0.pid == hupwatch },
            "every message must come from the main pid (NotifyAccess=main): \(msgs.map(\.pid)) vs \(hupwatch)")
    let texts = msgs.map(\.text)
    #expect(texts.count == 2 + 2 * reloads, "messages: \(texts)")
    guard texts.count == 2 + 2 * reloads else { return }
    func expectReady(_ text: String, generation n: Int) {
        let prefix = "READY=1\nSTATUS=generation \(n) serving, pid "
        #expect(text.hasPrefix(prefix), "message for generation \(n): \(text.debugDescription)")
        let pid = pid_t(text.dropFirst(prefix.count)) ?? 0
        #expect(pid > 0 && pid != hupwatch, "READY=1 should name generation \(n)'s pid: \(text.debugDescription)")
    }
    expectReady(texts[0], generation: 1)
    var lastMonotonic: UInt64 = startedAt
    for r in 1...reloads {
        let reloading = texts[2 * r - 1]
        let head = "RELOADING=1\nSTATUS=reloading: starting generation \(r + 1)\nMONOTONIC_USEC="
        #expect(reloading.hasPrefix(head), "reload \(r): \(reloading.debugDescription)")
        // systemd (Type=notify-reload) requires MONOTONIC_USEC: CLOCK_MONOTONIC when the reload began.
        if let usec = UInt64(reloading.dropFirst(head.count)) {
            #expect(usec > lastMonotonic && usec < endedAt, "MONOTONIC_USEC \(usec) out of [\(lastMonotonic), \(endedAt)]")
            lastMonotonic = usec
        } else {
            Issue.record("no MONOTONIC_USEC number in \(reloading.debugDescription)")
        }
        expectReady(texts[2 * r], generation: r + 1)
    }
    #expect(texts.last == "STOPPING=1")
}

extension SupervisorExamples {
    @Suite struct SystemdExample {
        @Test("systemd: both example units pass `systemd-analyze verify` with no diagnostic")
        func verifyUnits() async throws {
            let analyze = try tool("systemd-analyze", install: "apt-get install -y systemd")
            let dir = try TempDir()
            defer { dir.remove() }
            // Point ExecStart at binaries that exist, so verify checks the commands too.
            let subs = [("/usr/local/bin/hupwatch", try builtBinary("hupwatch")), ("/usr/local/bin/swsgi", try builtBinary("swsgi")),
                        ("/run/app.sock", dir.file("app.sock"))]
            try dir.write("plain/app.service", try example("systemd/app.service", subs))
            try dir.write("activated/app.service", try example("systemd/socket-activated/app.service", subs))
            try dir.write("activated/app.socket", try example("systemd/socket-activated/app.socket", subs))
            for files in [["plain/app.service"], ["activated/app.socket", "activated/app.service"]] {
                let r = try await run([analyze, "verify"] + files.map(dir.file), timeout: 60)
                #expect(r.status == 0 && r.output.isEmpty, "systemd-analyze verify \(files): \(r.status) \(r.output)")
            }
            // The check has teeth: verify exits 0 on a bad value but prints it, and a missing binary is an error.
            let broken = try example("systemd/app.service", subs).replacingOccurrences(of: "KillMode=mixed", with: "KillMode=mixd")
            try dir.write("broken/app.service", broken)
            let b = try await run([analyze, "verify", dir.file("broken/app.service")], timeout: 60)
            #expect(b.output.contains("Failed to parse kill mode"), "verify of a broken unit: \(b.output)")
            let original = try await run([analyze, "verify", examplesDir + "/systemd/app.service"], timeout: 60)
            #expect(original.status != 0 && original.output.contains("/usr/local/bin/hupwatch is not executable"),
                    "verify of the example as shipped (no /usr/local/bin/hupwatch here): \(original.output)")
        }

        @Test("systemd Type=notify: READY/RELOADING/READY/STOPPING exactly, across 3 ExecReload, 0 failed")
        func notify() async throws {
            let dir = try TempDir()
            var hupwatch: Child? = nil
            do {
                let unit = try example("systemd/app.service", try standardSubstitutions(dir))
                #expect(unitSettings(unit, "Type") == ["notify"] && unitSettings(unit, "NotifyAccess") == ["main"])
                #expect(unitSettings(unit, "KillMode") == ["mixed"] && unitSettings(unit, "KillSignal") == ["SIGTERM"])
                let timeoutStop = Double(unitSettings(unit, "TimeoutStopSec").first ?? "") ?? 0
                let execStart = try #require(unitSettings(unit, "ExecStart").first).split(separator: " ").map(String.init)
                let graceful = Double(execStart[execStart.firstIndex(of: "--graceful-timeout")! + 1]) ?? 1000
                #expect(timeoutStop > graceful, "TimeoutStopSec must be above hupwatch's --graceful-timeout")
                let execReload = try #require(unitSettings(unit, "ExecReload").first)

                let notify = try NotifySocket(path: dir.file("notify"))
                let started = monotonicMicroseconds()
                let h = try Child(execStart, output: dir.file("hupwatch.log"),
                                  environment: childEnvironment(marker: dir.path, extra: ["NOTIFY_SOCKET": notify.path]))
                hupwatch = h
                try await waitFor("READY=1 from hupwatch", timeout: 15) {
                    if !h.running { throw Failure("hupwatch exited: \(h.output)") }
                    return !notify.texts.isEmpty
                }
                let load = try await reloadThreeTimesUnderLoad(
                    socket: dir.file("app.sock"), log: { h.output }, supervisorPid: { h.pid },
                    reload: {
                        // ExecReload as systemd runs it, $MAINPID expanded.
                        let argv = execReload.replacingOccurrences(of: "$MAINPID", with: String(h.pid)).split(separator: " ").map(String.init)
                        try await check(argv)
                    })
                report("systemd (stand-in) Type=notify + swsgi: \(load), 3 reloads")
                // KillMode=mixed: KillSignal to the main pid only.
                expectServiceVisible(dir, server: "swsgi")
                h.signal(SIGTERM)
                let code = try await h.wait(timeout: timeoutStop, "hupwatch after SIGTERM")
                #expect(code == 0, "hupwatch's exit status after a clean drain: \(code)")
                expectNotifySequence(notify, hupwatch: h.pid, reloads: 3, startedAt: started, endedAt: monotonicMicroseconds())
                report("systemd (stand-in) notify messages: \(notify.messages.map { $0.replacingOccurrences(of: "\n", with: "\\n") })")
                // No generation's own READY=1 (swsgi sends one) may reach systemd: all came from hupwatch.
                #expect(h.output.contains("swsgi master") && h.output.contains("ready in"))
                try await expectNoServiceLeft(dir, allowed: [], "SIGTERM to the main pid")
            } catch {
                recordLog("hupwatch log", hupwatch?.output)
                await tearDown(dir, children: [hupwatch])
                throw error
            }
            await tearDown(dir, children: [hupwatch])
        }

        @Test("systemd socket activation: hupwatch passes the inherited listener on, 3 reloads, 0 failed, path kept")
        func socketActivation() async throws {
            let dir = try TempDir()
            var hupwatch: Child? = nil
            var listener: Int32 = -1
            do {
                var subs = try standardSubstitutions(dir)
                subs.insert(("/run/app.sock", dir.file("app.sock")), at: 0)
                let socketUnit = try example("systemd/socket-activated/app.socket", subs)
                let unit = try example("systemd/socket-activated/app.service", subs)
                let path = try #require(unitSettings(socketUnit, "ListenStream").first)
                #expect(path == dir.file("app.sock"))
                let execStart = try #require(unitSettings(unit, "ExecStart").first).split(separator: " ").map(String.init)
                #expect(!execStart.contains("--socket") && !execStart.contains("--listen"))
                let execReload = try #require(unitSettings(unit, "ExecReload").first)

                // What systemd does for app.socket: bind, chmod SocketMode, listen with Backlog.
                listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
                try bindUnix(listener, path)
                chmod(path, 0o660)
                #expect(Glibc.listen(listener, Int32(unitSettings(socketUnit, "Backlog").first ?? "") ?? 128) == 0)
                var st = stat()
                stat(path, &st)
                let inode = st.st_ino

                let notify = try NotifySocket(path: dir.file("notify"))
                let started = monotonicMicroseconds()
                // LISTEN_PID must be hupwatch's own pid: a shell sets it to $$ and execs (exec keeps the pid).
                let h = try Child(["/bin/sh", "-c", "export LISTEN_PID=$$; exec \"$@\"", "sh"] + execStart,
                                  output: dir.file("hupwatch.log"),
                                  environment: childEnvironment(marker: dir.path, extra: [
                                      "NOTIFY_SOCKET": notify.path, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "app.socket"]),
                                  fd3: listener)
                hupwatch = h
                try await waitFor("READY=1 from hupwatch", timeout: 15) {
                    if !h.running { throw Failure("hupwatch exited: \(h.output)") }
                    return !notify.texts.isEmpty
                }
                #expect(procEntry(h.pid)?.comm == "hupwatch")
                // swsgi got the listener through hupwatch, named as systemd named it.
                #expect(h.output.contains("listening on fd 3 from LISTEN_FDS (app.socket)"), "log: \(h.output)")
                let load = try await reloadThreeTimesUnderLoad(
                    socket: path, log: { h.output }, supervisorPid: { h.pid },
                    reload: {
                        let argv = execReload.replacingOccurrences(of: "$MAINPID", with: String(h.pid)).split(separator: " ").map(String.init)
                        try await check(argv)
                    })
                report("systemd (stand-in) socket activation + swsgi: \(load), 3 reloads")
                expectServiceVisible(dir, server: "swsgi")
                h.signal(SIGTERM)
                let code = try await h.wait(timeout: 40, "hupwatch after SIGTERM")
                #expect(code == 0)
                expectNotifySequence(notify, hupwatch: h.pid, reloads: 3, startedAt: started, endedAt: monotonicMicroseconds())
                // Neither hupwatch nor any swsgi bound or removed the path: it is systemd's, same inode.
                var st2 = stat()
                #expect(stat(path, &st2) == 0 && st2.st_ino == inode, "the socket path was replaced or removed")
                try await expectNoServiceLeft(dir, allowed: [], "SIGTERM to the main pid")
                // And it still takes connections, queued for the next start, as systemd's socket does.
                let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
                var addr = sockaddr_un()
                addr.sun_family = sa_family_t(AF_UNIX)
                withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
                let c = withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
                #expect(c == 0, "the listener should still queue connections after the service stopped")
                close(probe)
            } catch {
                recordLog("hupwatch log", hupwatch?.output)
                if listener >= 0 { close(listener) }
                await tearDown(dir, children: [hupwatch])
                throw error
            }
            close(listener)
            await tearDown(dir, children: [hupwatch])
        }
    }
}
