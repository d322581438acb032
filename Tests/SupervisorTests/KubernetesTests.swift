import Foundation
import Glibc
import Testing

/// supervisor-examples/kubernetes/deployment.yaml, parsed, checked for the rules its README states, and its
/// container command run for real (port and binaries swapped for the test's): the readiness probe, a reload
/// through `hupwatch reload --wait`, and a stop within the grace period.
@Suite(.serialized) struct KubernetesManifestTests {
    struct Container {
        let command: [String]
        let args: [String]
        let readinessProbe: [String]
        let gracePeriodSeconds: Int
        let preStopSleep: Int
        let port: Int
    }

    /// The manifest as JSON through PyYAML (installed by Tests/run).
    func manifest() async throws -> Container {
        let python = try requireTool("python3")
        let path = packageRoot + "/supervisor-examples/kubernetes/deployment.yaml"
        let script = "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
        let r = try await run([python, "-c", script, path])
        guard r.status == 0 else {
            throw TestFailure("cannot parse \(path) (PyYAML: python3 -m pip install pyyaml): \(r.output)")
        }
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any])
        #expect(doc["kind"] as? String == "Deployment")
        let spec = try #require(doc["spec"] as? [String: Any])
        let strategy = try #require(spec["strategy"] as? [String: Any])
        let rolling = try #require(strategy["rollingUpdate"] as? [String: Any])
        #expect(rolling["maxUnavailable"] as? Int == 0, "a rolling update never drops below the replica count")
        let pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        let c = try #require((pod["containers"] as? [[String: Any]])?.first)
        let probe = try #require(((c["readinessProbe"] as? [String: Any])?["exec"] as? [String: Any])?["command"] as? [String])
        let preStop = (((c["lifecycle"] as? [String: Any])?["preStop"] as? [String: Any])?["exec"] as? [String: Any])?["command"] as? [String]
        let port = try #require((c["ports"] as? [[String: Any]])?.first?["containerPort"] as? Int)
        return Container(command: try #require(c["command"] as? [String]), args: try #require(c["args"] as? [String]),
                         readinessProbe: probe, gracePeriodSeconds: try #require(pod["terminationGracePeriodSeconds"] as? Int),
                         preStopSleep: preStop.flatMap { $0.first == "sleep" ? Int($0[1]) : nil } ?? 0, port: port)
    }

    func value(after flag: String, in argv: [String]) -> String? {
        argv.firstIndex(of: flag).flatMap { $0 + 1 < argv.count ? argv[$0 + 1] : nil }
    }

    @Test func theManifestKeepsItsPromises() async throws {
        let c = try await manifest()
        #expect(c.command.first == "hupwatch")
        #expect(value(after: "--listen", in: c.command) == "http=:\(c.port)", "hupwatch owns the container port")
        let graceful = try #require(value(after: "--graceful-timeout", in: c.command).flatMap(Int.init))
        #expect(c.gracePeriodSeconds > graceful + c.preStopSleep,
                "terminationGracePeriodSeconds covers preStop plus hupwatch's own drain")
        #expect(Array(c.readinessProbe.prefix(2)) == ["hupwatch", "status"])
        #expect(value(after: "--pid-file", in: c.readinessProbe) == value(after: "--pid-file", in: c.command))
    }

    @Test func itsCommandServesReloadsAndStopsForReal() async throws {
        let c = try await manifest()
        let dir = try TempDir()
        defer { dir.remove() }
        let port = try freeLocalPort()
        let pidFile = dir.file("hupwatch.pid")
        // The container's own command, with the test's binaries, port and pid file.
        func local(_ argv: [String]) throws -> [String] {
            try argv.map { word -> String in
                switch word {
                case "hupwatch": return try binary("hupwatch")
                case "swsgi": return try binary("swsgi")
                case "http=:\(c.port)": return "http=127.0.0.1:\(port)"
                case value(after: "--pid-file", in: c.command): return pidFile
                default: return word
                }
            }
        }
        let argv = try local(c.command + c.args)
        let hw = try Child(argv, output: dir.file("hw.log"), environment: testEnvironment())
        defer { _ = hw.stop(SIGKILL) }
        try waitUntil(10, "the readiness probe to pass") {
            guard fileExists(pidFile) else { return false }
            return (try? runBlocking(local(c.readinessProbe))) == 0
        }
        #expect(tcpGet(port: UInt16(port)) == .success(200))
        let reload = try await run(try local(["hupwatch", "reload", "--wait", "--pid-file", "/run/hupwatch.pid"]))
        #expect(reload.status == 0, "\(reload.output)")
        #expect(tcpGet(port: UInt16(port)) == .success(200))
        let started = monotonicSeconds()
        hw.signal(SIGTERM)
        #expect(hw.waitExit(timeout: Double(c.gracePeriodSeconds)) == 0)
        #expect(monotonicSeconds() - started < Double(c.gracePeriodSeconds))
    }

    /// A command's exit status, run to its end on this thread.
    func runBlocking(_ argv: [String]) throws -> Int32 {
        let child = try Child(argv, output: "/dev/null", environment: testEnvironment())
        return child.waitExit(timeout: 10) ?? { _ = child.stop(SIGKILL); return -1 }()
    }
}
