import CGlibcShim
import Glibc
import Posix
import SWSGIConfig

/// uWSGI's `limit-as`, `max-fd` and `cpu-affinity`: resource limits set by the master at start-up
/// (before any app code or fork, so every process inherits them), and each worker's CPUs.
enum ProcessLimits {
    /// RLIMIT_AS and RLIMIT_NOFILE, soft and hard, as uWSGI sets them (core/uwsgi.c uwsgi_start).
    static func apply(_ o: ProcessOptions) throws {
        if o.limitAddressSpaceMiB > 0 {
            try set(RLIMIT_AS, rlim_t(o.limitAddressSpaceMiB) << 20, "limit-as \(o.limitAddressSpaceMiB)")
        }
        if o.maxFileDescriptors > 0 {
            try set(RLIMIT_NOFILE, rlim_t(o.maxFileDescriptors), "max-fd \(o.maxFileDescriptors)")
        }
    }

    private static func set(_ resource: __rlimit_resource, _ value: rlim_t, _ what: String) throws {
        var limit = rlimit(rlim_cur: value, rlim_max: value)
        guard setrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0 else {
            let e = errno
            throw SWSGIError("--\(what): setrlimit: \(errnoText(e))\(e == EPERM ? " (raising the hard limit needs root)" : "")")
        }
    }

    /// Pins the calling worker to its CPUs (uWSGI's uwsgi_set_cpu_affinity); returns the log line.
    static func pinWorker(_ o: ProcessOptions, workerID: Int) throws -> String? {
        let cpus = o.cpus(forWorker: workerID, of: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        guard !cpus.isEmpty else { return nil }
        let list = cpus.map(Int32.init)
        guard list.withUnsafeBufferPointer({ shim_set_cpu_affinity($0.baseAddress, Int32($0.count)) }) == 0 else {
            throw SWSGIError("--cpu-affinity: sched_setaffinity: \(errnoText(errno))")
        }
        return "mapping worker \(workerID) to CPUs: " + cpus.map(String.init).joined(separator: " ")
    }
}
