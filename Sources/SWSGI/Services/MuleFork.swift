import Glibc
import Posix

extension MasterServices {
    /// Forks mule `id`, telling a host (Python) around the fork as for a worker's. In the master:
    /// the pid, and errno when the fork failed (pid < 0).
    func forkMule(_ id: Int) -> (pid: Int32, errno: Int32) {
        let hooks = registrations.read { $0.muleForkHooks }
        hooks?.prepare()
        let pid = fork()
        let e = errno
        if pid == 0 { becomeMule(id, hostChild: hooks?.child) }
        hooks?.parent()
        return (pid, e)
    }

    /// The mule's whole life: its loop (`--mule=FILE`) or the default one, which runs each message's handler.
    private func becomeMule(_ id: Int, hostChild: (() -> Void)?) -> Never {
        hostChild?()
        closeMasterFDsInMule()
        let services = WorkerServices.enter(setup: setup, role: .mule(id), registrations: registrations.snapshotAfterFork())
        // A mule is an ordinary process: default signal dispositions, nothing blocked.
        var all = sigset_t()
        sigfillset(&all)
        sigprocmask(SIG_UNBLOCK, &all, nil)
        _ = setParentDeathSignal(SIGKILL)
        if getppid() != setup.masterPID { _exit(0) }
        setProcessTitle(setup.options.processTitle("swsgi mule \(id)"))
        services.runPostForkHooks()
        switch setup.options.mules[id - 1] {
        case .file(let f):
            let (loop, runner) = services.registrations.read { ($0.muleLoops[f], $0.muleFileRunner) }
            if let loop { loop() } else if let runner { runner(f) }
            _exit(0)
        case .dispatcher:
            while true {
                guard let message = services.receiveMessage() else { continue }
                if let h = services.registrations.read({ $0.muleMessageHandler }) { h(message) }
                else { ServerLog.line("mule \(id): a message of \(message.count) bytes and no Mules.onMessage handler") }
            }
        }
    }
}
