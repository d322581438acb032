// A small, deliberately misbehaving server for hupwatch's integration tests. It rebinds a Unix socket
// path as a restarted server does, or takes one through LISTEN_FDS, answers any HTTP GET with its pid,
// drains its accept queue on SIGTERM, and can be told to misbehave:
//   --socket PATH        bind here (else LISTEN_FDS=1 with LISTEN_PID = our pid, fd 3): under a temporary
//                        name renamed over PATH, so the path always leads to a listener (as swsgi does)
//   --unlink-bind        rebind the naive way instead: unlink PATH, bind, listen (gunicorn, uWSGI); the
//                        path is missing or refusing for the time between, which no wrapper can cover
//   --fail-at-start      exit 1 at once
//   --never-ready        never bind, never notify; wait for a signal
//   --ready-delay SEC    wait before binding and notifying
//   --notify             send READY=1 to NOTIFY_SOCKET once listening
//   --notify-delay SEC   send READY=1 that long after listening (announces readiness late)
//   --ignore-term        SIGTERM does nothing
//   --grandchild         fork a process that outlives us (in our process group)
//   --unlink-at-exit     remove the socket path at exit without checking it is ours (like gunicorn)
//   --exit-code N        status to exit with after SIGTERM (default 0)
//   --drain-ms MS        wait this long after SIGTERM before draining (a slow drain)
//   --full-backlog       listen with a backlog of 1, fill the queue with connections of our own before the
//                        path leads to us, and never accept (a server still booting while a proxy fills
//                        its fresh listener): connecting to the path then fails with EAGAIN
import Glibc
import Posix

var socketPath: String? = nil
var failAtStart = false, neverReady = false, notify = false, ignoreTerm = false, grandchild = false, unlinkAtExit = false
var readyDelay = 0.0, notifyDelay = 0.0
var unlinkBind = false
var fullBacklog = false
var exitCode: Int32 = 0
var drainMilliseconds: Int32 = 0
var args = Array(CommandLine.arguments.dropFirst())[...]
while let a = args.popFirst() {
    switch a {
    case "--socket": socketPath = args.popFirst()
    case "--unlink-bind": unlinkBind = true
    case "--full-backlog": fullBacklog = true
    case "--fail-at-start": failAtStart = true
    case "--never-ready": neverReady = true
    case "--ready-delay": readyDelay = Double(args.popFirst() ?? "") ?? 0
    case "--notify": notify = true
    case "--notify-delay": notify = true; notifyDelay = Double(args.popFirst() ?? "") ?? 0
    case "--ignore-term": ignoreTerm = true
    case "--grandchild": grandchild = true
    case "--unlink-at-exit": unlinkAtExit = true
    case "--exit-code": exitCode = Int32(args.popFirst() ?? "") ?? 0
    case "--drain-ms": drainMilliseconds = Int32(args.popFirst() ?? "") ?? 0
    default:
        writeStderr("testchild: unknown argument \(a)")
        exit(2)
    }
}
let env = environmentSnapshot()
let me = getpid()
@MainActor func say(_ s: String) { writeStderr("testchild[\(me)]: \(s)") }

if failAtStart { say("failing at start"); exit(1) }
// Every signal hupwatch forwards is caught and logged ("got SIGWINCH"), so tests can see it arrive;
// uncaught, WINCH would be ignored and TTIN/TTOU would stop us.
let handled = [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU]
let sigs = try SignalFD(handled)
if ignoreTerm { say("ignoring SIGTERM") }
if grandchild {
    let pid = fork()
    if pid == 0 {
        var set = SignalSet(handled).raw
        sigprocmask(SIG_UNBLOCK, &set, nil)
        while true { pause() }
    }
    say("forked grandchild \(pid)")
}

@MainActor func sleepSeconds(_ s: Double) { if s > 0 { usleep(useconds_t(s * 1_000_000)) } }

@MainActor func waitForSignals(_ handle: (Int32) -> Bool) -> Never {
    while true {
        _ = try? waitReadable([sigs.fd.raw])
        while let (sig, _) = try! sigs.next() { if handle(sig) { exit(exitCode) } }
    }
}

if neverReady {
    say("never becoming ready")
    waitForSignals { sig in sig != SIGTERM || !ignoreTerm }
}
sleepSeconds(readyDelay)

let listener: Int32
if let path = socketPath {
    let (dir, name) = splitPath(path)
    let bindPath = unlinkBind ? path : dir + "/." + name + ".testchild-\(me)"
    unlink(bindPath)
    let fd = try UnixSocket.stream()
    let r = bindPath.withCString { p in shimBind(fd.raw, p) }
    if r != 0 { say("bind(\(bindPath)): \(errnoText(errno))"); exit(3) }
    Glibc.listen(fd.raw, fullBacklog ? 1 : 128)
    if fullBacklog {
        // Filled before the rename, so nobody ever sees this listener with room in its queue.
        var held: [Int32] = []
        while true {
            do { held.append(try UnixSocket.connect(path: bindPath, nonBlocking: true).release()) } catch let e as SyscallError where e.errno == EAGAIN {
                break
            } catch { say("\(error)"); exit(3) }
        }
        say("backlog full with \(held.count) connections of our own; never accepting")
    }
    if !unlinkBind && rename(bindPath, path) != 0 { say("rename(\(bindPath), \(path)): \(errnoText(errno))"); exit(3) }
    listener = fd.release()
} else if lookup("LISTEN_PID", in: env) == String(me), lookup("LISTEN_FDS", in: env) == "1" {
    listener = 3
    _ = fcntl(3, F_SETFD, FD_CLOEXEC)
} else {
    say("no --socket and no LISTEN_FDS for pid \(me)")
    exit(2)
}
_ = fcntl(listener, F_SETFL, O_NONBLOCK)
let listenerInode = (try? UnixSocket.inode(of: listener)) ?? 0
say("listening (inode \(listenerInode))")

@MainActor func sendReady() {
    guard let addr = lookup("NOTIFY_SOCKET", in: env), let s = try? UnixSocket.datagram() else { return }
    try? UnixSocket.send(datagram: "READY=1\nSTATUS=testchild serving", to: addr, from: s.raw)
}
if notify && notifyDelay == 0 { sendReady() }
var notifyAt = notify && notifyDelay > 0 ? monotonicNanoseconds() + UInt64(notifyDelay * 1e9) : nil

@MainActor func serve(_ conn: borrowing FileDescriptor) {
    var buf = [UInt8](repeating: 0, count: 4096)
    var got = 0
    var tv = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(conn.raw, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    while got < buf.count {
        let n = buf.withUnsafeMutableBytes { Glibc.read(conn.raw, $0.baseAddress! + got, $0.count - got) }
        if n <= 0 { return }
        got += n
        if buf[..<got].count >= 4 && buf[(got - 4)..<got].elementsEqual([13, 10, 13, 10]) { break }
    }
    let body = "\(me)\n"
    _ = try? conn.write("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
}

@MainActor func acceptAll() {
    if fullBacklog { return }
    while let c = try? UnixSocket.accept(listener) { serve(c) }
}

var stopping = false
while !stopping {
    let timeout: Int32 = notifyAt.map { at in Int32(max(0, (Int64(at) - Int64(monotonicNanoseconds())) / 1_000_000)) } ?? -1
    // A listener we never accept from stays readable: leave it out, or the loop would spin.
    let ready = (try? waitReadable(fullBacklog ? [sigs.fd.raw] : [sigs.fd.raw, listener], timeoutMilliseconds: notifyAt != nil ? timeout : -1)) ?? []
    if let at = notifyAt, monotonicNanoseconds() >= at {
        sendReady()
        say("announced READY=1 late")
        notifyAt = nil   // once: after the deadline a zero poll timeout would spin
    }
    if ready.contains(1) { acceptAll() }
    if ready.contains(0) {
        while let (sig, _) = try! sigs.next() {
            switch sig {
            case SIGTERM where ignoreTerm: say("SIGTERM ignored")
            case SIGTERM, SIGINT, SIGQUIT: stopping = true
            default: say("got \(SignalName.name(sig))")
            }
        }
    }
}
say("draining")
if drainMilliseconds > 0 { usleep(useconds_t(drainMilliseconds) * 1000) }
// Serve every connection still queued: closing a listener with queued connections resets them.
acceptAll()
if unlinkAtExit, let path = socketPath { unlink(path); say("removed \(path) without checking") }
say("exiting \(exitCode)")
exit(exitCode)
