import Glibc
import Posix
import ReloadCore

/// What the runner does with requests on its control socket (`hupwatch reload|status|stop`).
extension Runner {

    func acceptControlClients() {
        for fd in control.accept() {
            do { try reactor.watch(fd, token: Token.controlClient(fd)) } catch { log("control socket: \(error)") }
        }
    }

    func controlReadable(_ fd: Int32) -> Int32? {
        var closed: [Int32] = []
        let request = control.read(fd, closed: &closed)
        unwatchControl(closed)
        switch request {
        case .reload(let client)?:
            log("reload requested over the control socket")
            return feed(.reloadRequested(token: Int(client)))
        case .status(let client)?:
            let ready = machine.serving?.phase == .ready && !machine.isStopping
            control.answerStatus(client, ready: ready, document: statusJSON(machine, now: monotonicNanoseconds(), control: control.path),
                                 summary: statusSummary(machine, now: monotonicNanoseconds()), closed: &closed)
            unwatchControl(closed)
        case .stop(let client)?:
            control.stopping(client)
            return feed(.terminate(signal: SIGTERM))
        case nil:
            break
        }
        return nil
    }

    /// Closing an fd takes it out of epoll; what is left is our bookkeeping of queued events.
    func unwatchControl(_ fds: [Int32]) {
        for fd in fds { reactor.forget(token: Token.controlClient(fd)) }
    }
}
