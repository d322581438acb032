// The services' Swift API in use, served over HTTP so the integration tests (and you, with curl) can
// drive it from outside: caches, locks, mules, timers and process titles.
//
//   swift build --product ServicesExample
//   .build/debug/ServicesExample --socket /tmp/ex.sock --cache2 name=c,items=1000 --locks 2 --mule
//   curl --unix-socket /tmp/ex.sock 'http://x/cache/update?c=c&k=greeting&v=hello'
//   curl --unix-socket /tmp/ex.sock 'http://x/cache/get?c=c&k=greeting'
//
// Timers come from environment variables (read before the fork, where timers must be registered):
// EXAMPLE_TIMER_MS=N (every N ms on the first free worker), EXAMPLE_UNIQUE_MS=N with
// EXAMPLE_UNIQUE_WORK_MS=M (a unique job taking M ms, every N ms), EXAMPLE_MULE_TIMER_MS=N (on mule 1).
import Glibc
import SWSGI

func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func monotonic() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

/// `a=1&b=2` -> [a: 1, b: 2] (percent-decoding `%XX` and `+`).
func parameters(_ query: String?) -> [String: String] {
    var out: [String: String] = [:]
    for pair in (query ?? "").split(separator: "&") {
        let kv = pair.split(separator: "=", maxSplits: 1)
        out[decode(kv[0])] = kv.count > 1 ? decode(kv[1]) : ""
    }
    return out
}

func decode(_ s: Substring) -> String {
    var bytes: [UInt8] = []
    var i = s.utf8.startIndex
    while i < s.utf8.endIndex {
        let c = s.utf8[i]
        if c == UInt8(ascii: "%"), let end = s.utf8.index(i, offsetBy: 3, limitedBy: s.utf8.endIndex),
           let v = UInt8(String(decoding: s.utf8[s.utf8.index(after: i)..<end], as: UTF8.self), radix: 16) {
            bytes.append(v)
            i = end
            continue
        }
        bytes.append(c == UInt8(ascii: "+") ? 32 : c)
        i = s.utf8.index(after: i)
    }
    return String(decoding: bytes, as: UTF8.self)
}

// MARK: timers and mules, registered before serve (before the fork)

/// A refused registration (an interval above a year, say) ends start-up with the error, never a trap.
func registerOrExit(_ body: () throws -> Void) {
    do { try body() } catch {
        say("ServicesExample: \(error)")
        exit(1)
    }
}

if let ms = environment("EXAMPLE_TIMER_MS").flatMap(Int.init) {
    registerOrExit { try Timers.every(milliseconds: ms) { fire in
        let now = monotonic()
        say("example timer: signal \(fire.signal) worker \(ServerProcess.workerID) scheduled \(fire.scheduledAt) started \(now) late_us \((Int64(now) - Int64(fire.scheduledAt)) / 1000)")
    } }
}
if let ms = environment("EXAMPLE_UNIQUE_MS").flatMap(Int.init) {
    let work = UInt32(environment("EXAMPLE_UNIQUE_WORK_MS").flatMap(Int.init) ?? 100)
    // EXAMPLE_UNIQUE=0: the same job without `unique`, to show what it prevents.
    registerOrExit { try Timers.every(milliseconds: ms, on: .anyWorker, unique: environment("EXAMPLE_UNIQUE") != "0") { _ in
        say("example unique: start \(monotonic()) pid \(getpid())")
        usleep(work * 1000)
        say("example unique: end \(monotonic()) pid \(getpid())")
    } }
}
if let ms = environment("EXAMPLE_EACH_WORKER_MS").flatMap(Int.init) {
    registerOrExit { try Timers.every(milliseconds: ms, on: .allWorkers) { _ in say("example each-worker timer: worker \(ServerProcess.workerID)") } }
    registerOrExit { try Timers.every(milliseconds: ms, on: .worker(2)) { _ in say("example worker-2 timer: worker \(ServerProcess.workerID)") } }
}
if let ms = environment("EXAMPLE_LAZY_TIMER_MS").flatMap(Int.init) {
    // As an app imported in each worker (--lazy-apps) would: every worker registers the same timer.
    ServerProcess.afterFork {
        do {
            try Timers.every(milliseconds: ms) { fire in
                say("example lazy timer: worker \(ServerProcess.workerID) scheduled \(fire.scheduledAt)")
            }
        } catch {
            say("example lazy timer: \(error)")
        }
    }
}
if let ms = environment("EXAMPLE_MULE_TIMER_MS").flatMap(Int.init) {
    registerOrExit { try Timers.every(milliseconds: ms, on: .mule(1)) { _ in say("example mule timer: mule \(Mules.id) pid \(getpid())") } }
}

Mules.onMessage { bytes in say("example mule \(Mules.id) pid \(getpid()) message: \(String(decoding: bytes, as: UTF8.self))") }
Mules.registerFunction("shout") { bytes in say("example mule \(Mules.id) function shout: \(String(decoding: bytes, as: UTF8.self).uppercased())") }
Mules.registerLoop("looper") {
    ProcessTitle.set("looper mule \(Mules.id)")
    say("example looper mule \(Mules.id) started pid \(getpid())")
    while true {
        if let m = Mules.receiveMessage(timeoutMilliseconds: 5000) {
            if m.count > 1000 {
                say("example looper mule \(Mules.id) big message of \(m.count) bytes, all \(m.allSatisfy { $0 == m[0] } ? "intact" : "mixed")")
                continue
            }
            say("example looper mule \(Mules.id) message: \(String(decoding: m, as: UTF8.self))")
        }
    }
}

// MARK: the app

/// Every answer says which worker gave it (X-Worker), so tests can tell processes apart.
func app(_ request: Request) throws -> Response {
    var r = try route(request)
    r.headers.append("X-Worker", "\(ServerProcess.workerID)")
    r.headers.append("X-Pid", "\(getpid())")
    return r
}

func route(_ request: Request) throws -> Response {
    let p = parameters(request.query)
    func cache() throws -> Cache { try Cache(p["c"] ?? "c") }
    do {
        switch request.path {
        case "/whoami":
            return Response(text: "worker \(ServerProcess.workerID) pid \(getpid()) master \(ServerProcess.masterPID)\n")
        case "/cache/get":
            guard let v = try cache().get(p["k"] ?? "") else { return Response(status: 404, text: "miss\n") }
            return Response(body: v)
        case "/cache/set":
            return Response(text: try cache().set(p["k"] ?? "", Array((p["v"] ?? "").utf8), expires: Int(p["exp"] ?? "0") ?? 0) ? "stored\n" : "exists\n")
        case "/cache/update":
            // stall=N: this worker stops inside its Nth journaled store, for the test to SIGKILL it there.
            let c = try p["stall"].flatMap(Int.init).map { try cache()._stallingAfterStores($0) } ?? cache()
            try c.update(p["k"] ?? "", Array((p["v"] ?? "").utf8), expires: Int(p["exp"] ?? "0") ?? 0)
            return Response(text: "updated\n")
        case "/cache/sized":
            // A key and value of the given sizes: for the refusal tests.
            let key = String(repeating: "k", count: Int(p["keylen"] ?? "1") ?? 1)
            try cache().update(key, [UInt8](repeating: 0x76, count: Int(p["vallen"] ?? "1") ?? 1))
            return Response(text: "updated\n")
        case "/cache/delete":
            return Response(text: try cache().delete(p["k"] ?? "") ? "deleted\n" : "absent\n")
        case "/cache/exists":
            return Response(text: try cache().exists(p["k"] ?? "") ? "yes\n" : "no\n")
        case "/cache/clear":
            try cache().clear()
            return Response(text: "cleared\n")
        case "/cache/keys":
            return Response(text: try cache().keys().sorted().joined(separator: "\n") + "\n")
        case "/bench/cache":
            // Benchmarks/cache.py: `ops` update+get pairs over 256 keys of 64 bytes, started at the wall-clock
            // instant `at` (ns) so two workers run at the same time; answers "OPERATIONS ELAPSED_NS".
            let ops = Int(p["ops"] ?? "1000") ?? 1000
            let c = try cache()
            let keys = (0..<256).map { "k\($0)" }
            let value = [UInt8](repeating: 0x78, count: 64)
            if let at = p["at"].flatMap(Int64.init) {
                var ts = timespec()
                while true {
                    clock_gettime(CLOCK_REALTIME, &ts)
                    if Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec) >= at { break }
                    usleep(200)
                }
            }
            let t0 = monotonic()
            for i in 0..<ops {
                let k = keys[i & 255]
                try c.update(k, value)
                _ = try c.get(k)
            }
            return Response(text: "\(2 * ops) \(monotonic() - t0)\n")
        case "/sleep":
            usleep(UInt32((Double(p["s"] ?? "1") ?? 1) * 1_000_000))
            return Response(text: "slept\n")
        case "/cache/count":
            // n increments (or decrements with by<0) of one counter, one atomic operation each. With
            // barrier=N, first wait (up to 10 s) until N requests arrived: they then run in N workers at once.
            let n = Int(p["n"] ?? "1") ?? 1, by = Int64(p["by"] ?? "1") ?? 1
            var last: Int64 = 0
            let c = try cache()
            if let b = p["barrier"], let need = Int64(b) {
                let key = "barrier-\(p["round"] ?? "0")"
                try c.increment(key)
                let deadline = monotonic() + 10_000_000_000
                while try (c.counter(key) ?? 0) < need {
                    if monotonic() > deadline { return Response(status: 504, text: "barrier not reached\n") }
                    usleep(1000)
                }
            }
            for _ in 0..<n { last = try c.increment(p["k"] ?? "n", by: by) }
            return Response(text: "\(last)\n")
        case "/cache/churn":
            // n random operations over 60 keys: updates of random sizes, deletes, increments.
            let c = try cache()
            var g = SystemRandomNumberGenerator()
            for _ in 0..<(Int(p["n"] ?? "1000") ?? 1000) {
                let r = Int.random(in: 0..<1_000_000, using: &g)
                switch r % 3 {
                case 0: try c.update("key\(r % 60)", [UInt8](repeating: UInt8(r & 0xff), count: r % 64))
                case 1: try c.delete("key\(r % 60)")
                default: try c.increment("cnt\(r % 4)")
                }
            }
            return Response(text: "churned\n")
        case "/cache/crashpoints":
            // Every crash point of every kind of write, on an empty cache then a populated one.
            let c = try cache()
            var points = 0
            var problems: [String] = []
            let writes: [(String, (Cache) throws -> Void)] = [
                ("insert", { try $0.update("a", Array("one".utf8)) }),
                ("replace", { try $0.update("a", Array("two".utf8), expires: 60) }),
                ("set-new", { _ = try $0.set("b", Array("bee".utf8)) }),
                ("increment-new", { try $0.increment("n", by: 5) }),
                ("increment", { try $0.increment("n", by: -2) }),
                ("delete", { try $0.delete("a") }),
                ("delete-chain-middle", { try $0.delete("k7") }),
            ]
            for k in 0..<12 { try c.update("k\(k)", Array("v\(k)".utf8)) }  // chains of several items
            for (name, write) in writes {
                let r = try c._checkEveryCrashPoint(write)
                points += r.points
                problems += r.problems.map { "\(name): \($0)" }
            }
            // At capacity: replacing an existing key writes into the spare slot, so it too rolls back exactly.
            var filled = 0
            do { while true { try c.update("f\(filled)", Array("x".utf8)); filled += 1 } } catch CacheError.full {}
            let full = try c._checkEveryCrashPoint { try $0.update("k0", Array("replaced-at-capacity".utf8)) }
            points += full.points
            problems += full.problems.map { "replace-at-capacity: \($0)" }
            let expected = "two=nil b=bee n=3 k0=replaced-at-capacity"
            let got = "two=\(try c.get("a").map { String(decoding: $0, as: UTF8.self) } ?? "nil") b=\(String(decoding: try c.get("b") ?? [], as: UTF8.self)) n=\(try c.counter("n") ?? 0) k0=\(String(decoding: try c.get("k0") ?? [], as: UTF8.self))"
            if got != expected { problems.append("final state \(got), expected \(expected)") }
            return Response(status: problems.isEmpty ? 200 : 500, text: "\(points) crash points\n" + problems.joined(separator: "\n"))
        case "/cache/counter":
            return Response(text: "\(try cache().counter(p["k"] ?? "n").map(String.init) ?? "none")\n")
        case "/cache/check":
            return Response(text: (try cache().consistencyProblem()) ?? "consistent\n")
        case "/harakiri/stream":
            // Request.setHarakiri called from the response's stream, after the app has returned: the limit
            // still holds for this request (a streamed response is part of it).
            let seconds = Double(p["s"] ?? "1") ?? 1
            return Response(status: 200) { stream in
                request.setHarakiri(seconds: seconds)
                say("example: worker \(ServerProcess.workerID) pid \(getpid()) streams under harakiri \(seconds)")
                for _ in 0..<600 {
                    try stream.write("tick\n")
                    usleep(50_000)
                }
            }
        case "/lock/hold":
            // Takes the lock and keeps it past any harakiri: the worker dies holding it.
            let n = Int(p["n"] ?? "0") ?? 0
            try Locks.lock(n)
            say("example: worker \(ServerProcess.workerID) pid \(getpid()) holds lock \(n)")
            usleep(UInt32((Double(p["s"] ?? "30") ?? 30) * 1_000_000))
            try Locks.unlock(n)
            return Response(text: "held and released\n")
        case "/lock/take":
            let n = Int(p["n"] ?? "0") ?? 0
            let deadline = monotonic() + UInt64((Double(p["wait"] ?? "2") ?? 2) * 1e9)
            while monotonic() < deadline {
                if try Locks.tryLock(n) {
                    try Locks.unlock(n)
                    return Response(text: "taken by pid \(getpid())\n")
                }
                usleep(10_000)
            }
            return Response(status: 503, text: "lock \(n) still held\n")
        case "/lock/twice":
            let n = Int(p["n"] ?? "0") ?? 0
            try Locks.lock(n)
            defer { try? Locks.unlock(n) }
            try Locks.lock(n)
            return Response(text: "locked twice?\n")
        case "/lock/unlock":
            try Locks.unlock(Int(p["n"] ?? "0") ?? 0)
            return Response(text: "unlocked\n")
        case "/lock/scoped":
            let n = Int(p["n"] ?? "0") ?? 0
            let v = try Locks.withLock(n) { () throws -> Int64 in
                let c = try cache()
                let old = try c.counter("scoped") ?? 0
                var next = old + 1
                try c.update("scoped", withUnsafeBytes(of: &next) { Array($0) })
                return next
            }
            return Response(text: "\(v)\n")
        case "/mule/send":
            let body = p["size"].flatMap(Int.init).map { [UInt8](repeating: 0x61, count: $0) } ?? Array((p["msg"] ?? "").utf8)
            try Mules.send(body, to: Int(p["m"] ?? "0") ?? 0)
            return Response(text: "sent\n")
        case "/mule/seq":
            let m = Int(p["m"] ?? "0") ?? 0
            for i in 0..<(Int(p["count"] ?? "10") ?? 10) { try Mules.send(Array("seq \(i)".utf8), to: m) }
            return Response(text: "sent\n")
        case "/mule/call":
            try Mules.call(p["f"] ?? "shout", Array((p["arg"] ?? "").utf8), mule: Int(p["m"] ?? "0") ?? 0)
            return Response(text: "called\n")
        case "/title":
            ProcessTitle.set(p["t"] ?? "titled")
            return Response(text: "ok\n")
        default:
            return Response(status: 404, text: "unknown endpoint\n")
        }
    } catch let e as CacheError {
        return Response(status: 413, text: "\(e)\n")
    } catch {
        return Response(status: 500, text: "\(error)\n")
    }
}

serve(app)
