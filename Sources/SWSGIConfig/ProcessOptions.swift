/// Process-level options with uWSGI's names and meanings: resource limits, CPU pinning, address-space
/// recycling and process titles. Part of `ServerOptions` (`options.process`).
public struct ProcessOptions: Equatable, Sendable {
    /// RLIMIT_AS (soft and hard) of the master, so of every process it forks, in MiB; 0 = inherited (`--limit-as`).
    public var limitAddressSpaceMiB: Int = 0
    /// RLIMIT_NOFILE (soft and hard) set at start-up; 0 = inherited (`--max-fd`).
    public var maxFileDescriptors: Int = 0
    /// CPUs each worker is pinned to (`--cpu-affinity N`): worker W gets N CPUs from (W-1)*N, wrapping, as uWSGI.
    public var cpuAffinity: Int = 0
    /// Gracefully recycle a worker whose address space (VmSize) is above this after a request, MiB (`--reload-on-as`).
    public var reloadOnAddressSpaceMiB: Int = 0
    /// Kill a worker at or above this address space even while busy, MiB (`--evil-reload-on-as`).
    public var evilReloadOnAddressSpaceMiB: Int = 0
    /// Every process's title instead of `swsgi master` / `swsgi worker N` (`--procname`).
    public var procname: String? = nil
    /// The master's title (`--procname-master`), before `--procname`.
    public var procnameMaster: String? = nil
    /// Appended to every title (`--procname-append`).
    public var procnameAppend: String = ""
    /// Recycle a worker (gracefully, after the request) whose app raised an exception (`--reload-on-exception`).
    public var reloadOnException: Bool = false

    public init() {}

    func validate() throws(ConfigError) {
        let (soft, hard) = (reloadOnAddressSpaceMiB, evilReloadOnAddressSpaceMiB)
        if soft > 0, hard > 0, hard < soft {
            throw ConfigError("--evil-reload-on-as (\(hard)) must be at least --reload-on-as (\(soft))")
        }
        if let p = procname ?? procnameMaster, p.utf8.contains(0) { throw ConfigError("--procname: \(quoted(p)) contains a NUL byte") }
    }

    /// The CPUs worker `workerID` (1-based) is pinned to on a machine with `cpus` CPUs, as uWSGI's
    /// uwsgi_set_cpu_affinity: `cpuAffinity` of them from (id - 1) * cpuAffinity, wrapping to 0.
    public func cpus(forWorker workerID: Int, of cpus: Int) -> [Int] {
        guard cpuAffinity > 0, cpus > 0 else { return [] }
        var base = (workerID - 1) * cpuAffinity
        if base >= cpus { base %= cpus }
        var out: [Int] = []
        for _ in 0..<cpuAffinity {
            if base >= cpus { base = 0 }
            out.append(base)
            base += 1
        }
        return out
    }
}

extension ServerOptions {
    /// A process's title, uWSGI's way: prefix + (procname-master for the master, else procname, else
    /// swsgi's own `name`) + procname-append.
    public func processTitle(_ name: String, master: Bool = false) -> String {
        let middle = (master ? process.procnameMaster : nil) ?? process.procname ?? name
        return procnamePrefix + middle + process.procnameAppend
    }
}

private let group = "Process (uWSGI names)"
private let mib = 0...(1 << 40)

/// The process rows of the option table.
let processOptionRows: [OptionSpec] = [
    option(group, "limit-as", "MIB", .int(mib), \.process.limitAddressSpaceMiB, default: "0 = inherited",
           "limit the address space (RLIMIT_AS) of the master and every process it starts"),
    option(group, "max-fd", "N", .int(0...(1 << 30)), \.process.maxFileDescriptors, default: "0 = inherited",
           "set the open-files limit (RLIMIT_NOFILE) at start-up; above the hard limit needs root"),
    option(group, "cpu-affinity", "N", .int(0...4096), \.process.cpuAffinity, default: "0 = off",
           "pin each worker to N CPUs: worker W gets CPUs (W-1)*N onwards, wrapping (uWSGI's layout)"),
    option(group, "reload-on-as", "MIB", .int(mib), \.process.reloadOnAddressSpaceMiB, default: "0 = off",
           "gracefully recycle a worker whose address space is above this many MiB after a request"),
    option(group, "evil-reload-on-as", "MIB", .int(mib), \.process.evilReloadOnAddressSpaceMiB, default: "0 = off",
           "SIGKILL a worker at or above this many MiB of address space, even while busy (checked every 250 ms)"),
    boolean(group, "reload-on-exception", \.process.reloadOnException,
            "recycle a worker after a request whose app raised an exception (the request still gets its 500)"),
    option(group, "procname", "NAME", .string(), \.process.procname, default: "swsgi master / swsgi worker N",
           "title of every process (after --procname-prefix)"),
    option(group, "procname-master", "NAME", .string(), \.process.procnameMaster, default: "--procname",
           "title of the master"),
    option(group, "procname-append", "TEXT", .string(allowEmpty: true), \.process.procnameAppend, default: "none",
           "appended to every process title"),
]
