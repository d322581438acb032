/// The option-table rows of the services (issue 13). Repeatable options append.
private let services = "Services: cache, locks, mules, logs, hooks (uWSGI names)"

private func row(_ name: String, _ valueName: String?, _ defaultText: String, _ help: String,
                 optionalValue: Bool = false,
                 _ set: @escaping @Sendable (inout ServerOptions, String) throws(ValueProblem) -> Void) -> OptionSpec {
    var spec = OptionSpec(name: name, aliases: [], group: services, valueName: valueName, defaultText: defaultText,
                          help: help, role: .setting(set), isBoolean: optionalValue)
    spec.optionalValue = optionalValue
    return spec
}

let servicesOptionRows: [OptionSpec] = [
    row("cache2", "name=NAME,items=N[,blocksize=B][,keysize=K]", "none",
        "a shared cache (repeatable); values over blocksize (64k), keys over keysize (2048) are refused") { o, t throws(ValueProblem) in
        o.caches.append(try CacheOptions.parse(t))
    },
    row("locks", "N", "0", "user locks 1...N shared by all processes, besides lock 0") { o, t throws(ValueProblem) in
        o.locks = try ValueParser<Int>.int(0...4096).parse(t)
    },
    row("mule", "[FILE]", "none", "start a mule (repeatable); --mule=FILE runs the loop registered as FILE, or the Python script FILE",
        optionalValue: true) { o, t throws(ValueProblem) in
        o.mules.append(MuleOptions.parse(t))
    },
] + HookPhase.allCases.flatMap { phase in
    [
        row("hook-\(phase.rawValue)", "ACTION:ARG", "none",
            "at \(phase.rawValue): exec:CMD mkdir:DIR unlink:PATH write:PATH TEXT print:TEXT; failing stops start-up") { o, t throws(ValueProblem) in
            o.hooks.append(Hook(phase: phase, action: try HookAction.parse(t)))
        },
        row("exec-\(phase.rawValue)", "CMD", "none", "shorthand for --hook-\(phase.rawValue) exec:CMD") { o, t throws(ValueProblem) in
            if t.isEmpty || t.utf8.contains(0) { throw ValueProblem("\(quoted(t)) is not a command") }
            o.hooks.append(Hook(phase: phase, action: .exec(t)))
        },
    ]
}
