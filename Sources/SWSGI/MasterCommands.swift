import Glibc
import Posix
import ServicesCore
import SWSGIConfig

/// The commands the master runs beside the server: attached daemons (`AttachedDaemons` decides; this
/// carries out its spawns and signals) and cron jobs (`TimerScheduler` decides when). Each runs as
/// `/bin/sh -c COMMAND` in its own process group, stdin from /dev/null, with the server's environment.
final class MasterCommands {
    private var daemons: AttachedDaemons
    private let cron: [CronCommandOptions]
    private var scheduler = TimerScheduler()
    /// Running cron commands: pid -> job index.
    private var cronRunning: [Int32: Int] = [:]
    private let environment: [String]
    /// How long daemons get at exit between their stop signal and SIGKILL (uWSGI's 3 s without reload-mercy).
    static let stopGraceNanoseconds: UInt64 = 3_000_000_000

    init(_ options: ServerOptions, environment: [String]) throws {
        daemons = AttachedDaemons(options.daemons)
        cron = options.cronCommands
        self.environment = environment
        let clock = TimerScheduler.Clock.now()
        for (i, c) in cron.enumerated() {
            let spec: CronSpec
            do { spec = try CronSpec(minute: c.minute, hour: c.hour, day: c.day, month: c.month, weekday: c.weekday) } catch {
                throw SWSGIError("--cron \(c.minute) \(c.hour) \(c.day) \(c.month) \(c.weekday) \(c.command): \(error)")
            }
            scheduler.add(.init(id: i, kind: .cron(spec)), clock: clock)
        }
    }

    var isEmpty: Bool { daemons.isEmpty && cron.isEmpty }

    var nextDeadline: Instant? { [daemons.nextDeadline, scheduler.nextDeadline].compactMap { $0 }.min() }

    /// At start: the daemons. A returned reason means the server must stop (a control daemon died).
    func start() -> String? { carryOut(daemons.handle(.started, now: monotonicNanoseconds())) }

    /// A reaped child: true when it was one of ours (the stop reason, if a control daemon died, in `stop`).
    func childExited(_ pid: Int32, status: ProcessEnd, stop: inout String?) -> Bool {
        if let job = cronRunning.removeValue(forKey: pid) {
            if status != .exited(0) { ServerLog.line("cron: \"\(cron[job].command)\" (pid \(pid)) ended: \(status)") }
            return true
        }
        guard daemons.owns(pid) else { return false }
        stop = carryOut(daemons.handle(.exited(pid: pid, status: "\(status)"), now: monotonicNanoseconds()))
        return true
    }

    /// Throttled respawns and cron minutes that are due.
    func deadlinePassed() -> String? {
        let now = monotonicNanoseconds()
        let reason = carryOut(daemons.handle(.deadline, now: now))
        for fire in scheduler.fire(clock: TimerScheduler.Clock.now()) {
            let job = cron[fire.id]
            if job.unique, cronRunning.values.contains(fire.id) {
                ServerLog.line("unique-cron: \"\(job.command)\" still runs from last time: skipped")
                continue
            }
            do {
                let pid = try spawnCommand(job.command, chdir: nil, daemon: false)
                cronRunning[pid] = fire.id
            } catch {
                ServerLog.line("cron: cannot run \"\(job.command)\": \(error)")
            }
        }
        return reason
    }

    /// The workers are being reloaded: daemons with a reload signal get it.
    func reload() { _ = carryOut(daemons.handle(.reload, now: monotonicNanoseconds())) }

    /// At exit: each daemon's group gets its stop signal, then SIGKILL after the grace; every daemon is
    /// reaped before this returns (through the master's own reactor: it reaps children as they end).
    func stopAll(reactor: Reactor) {
        _ = carryOut(daemons.handle(.stop, now: monotonicNanoseconds()))
        var left = Set(daemons.running.map(\.pid))
        let deadline = monotonicNanoseconds() + Self.stopGraceNanoseconds
        while !left.isEmpty {
            do {
                try reactor.setDeadline(deadline)
                switch try reactor.next() {
                case .childExited(let pid, let status):
                    if left.remove(pid) != nil { _ = daemons.handle(.exited(pid: pid, status: "\(status)"), now: monotonicNanoseconds()) }
                    cronRunning[pid] = nil
                case .deadline:
                    if monotonicNanoseconds() >= deadline {
                        for pid in left {
                            ServerLog.line("attach-daemon: pid \(pid) did not stop in time: SIGKILL")
                            kill(-pid, SIGKILL)
                            var st: Int32 = 0
                            while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
                        }
                        left = []
                    }
                default: break
                }
            } catch {
                ServerLog.line("attach-daemon: \(error)")
                for pid in left { kill(-pid, SIGKILL) }
                return
            }
        }
    }

    /// Carries out the daemons' decisions; returns a stop reason when one says the server must stop.
    private func carryOut(_ actions: [AttachedDaemons.Action]) -> String? {
        var stop: String? = nil
        var queue = actions[...]
        while let a = queue.popFirst() {
            switch a {
            case .spawn(let i):
                let spec = daemons.specs[i]
                do {
                    let pid = try spawnCommand(spec.command, chdir: spec.chdir)
                    queue += daemons.handle(.spawned(index: i, pid: pid), now: monotonicNanoseconds())
                } catch {
                    queue += daemons.handle(.spawnFailed(index: i, reason: "\(error)"), now: monotonicNanoseconds())
                }
            case .signalGroup(let pid, let sig):
                if kill(-pid, sig) != 0 && errno != ESRCH { ServerLog.line("attach-daemon: kill(-\(pid), \(SignalName.name(sig))): \(errnoText(errno))") }
            case .log(let m):
                ServerLog.line(m)
            case .stopServer(let m):
                ServerLog.line(m)
                stop = m
            }
        }
        return stop
    }

    /// `/bin/sh -c COMMAND`, its own process group, stdin /dev/null. A daemon is SIGKILLed when the master
    /// dies (uWSGI's PR_SET_PDEATHSIG in core/daemons.c: a master killed with SIGKILL leaves no daemon running
    /// unowned); a cron job is not (uWSGI's uwsgi_run_command: a job finishes its work whatever the server does).
    private func spawnCommand(_ command: String, chdir: String?, daemon: Bool = true) throws -> Int32 {
        try spawn(SpawnRequest(executablePath: "/bin/sh", argv: ["/bin/sh", "-c", "exec </dev/null; " + command],
                               environment: environment, workingDirectory: chdir, parentDeathSignal: daemon ? SIGKILL : nil))
    }
}
