import Glibc

/// A copy of the process environment taken once, so children's envp are built from values, never setenv.
public func environmentSnapshot() -> [String] {
    var out: [String] = []
    var p = environ
    while let entry = p.pointee {
        out.append(String(cString: entry))
        p += 1
    }
    return out
}

/// The value of `name` in an environment list.
public func lookup(_ name: String, in env: [String]) -> String? {
    let prefix = name + "="
    return env.last { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
}

/// `env` without the variables named in `names`.
public func removing(_ names: Set<String>, from env: [String]) -> [String] {
    env.filter { entry in
        guard let eq = entry.firstIndex(of: "=") else { return true }
        return !names.contains(String(entry[..<eq]))
    }
}

/// argv as the kernel gave it, byte for byte (`CommandLine.arguments` repairs what is not UTF-8).
public func rawCommandLine() -> [[UInt8]] {
    (0..<Int(CommandLine.argc)).map { i in
        guard let p = CommandLine.unsafeArgv[i] else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: strlen(p)))
    }
}
