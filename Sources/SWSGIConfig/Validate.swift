import Common
extension ServerOptions {
    /// Checks the rules that involve several options (and the ranges a hand-built value could break).
    /// `load` calls it; call it again after changing options in code.
    public func validate() throws(ConfigError) {
        func fail(_ message: String) throws(ConfigError) { throw ConfigError(message) }

        // Listeners: any number, each its own address (none means systemd's LISTEN_FDS must supply them).
        var seen: [String: ListenerSpec] = [:]
        for l in listeners {
            // Port 0 is a different free port for each listener.
            if case .tcp(let a) = l.address, a.port == 0 { continue }
            if let first = seen[l.address.bindKey] {
                try fail("\(first.flag) \(first.address) and \(l.flag) \(l.address): the same address twice; each listener needs its own")
            }
            seen[l.address.bindKey] = l
            switch l.address {
            case .unix(let path): if let p = SocketPath.problem(path) { try fail("\(l.flag): \(p)") }
            case .tcp: break
            }
        }
        if let statsSocket {
            if !statsSocket.contains("/"), statsSocket.contains(":") {
                do { _ = try ValueParser<HTTPSocketAddress>.hostPort.parse(statsSocket) } catch { try fail("--stats: \(error.message)") }
            } else if let p = SocketPath.problem(statsSocket) {
                try fail("--stats: \(p)")
            }
        }
        if let chmodSocket, chmodSocket > 0o7777 { try fail("--chmod-socket: \(chmodSocket) is above 07777") }

        for entry in env {
            guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex,
                  !entry[..<eq].contains(where: { $0 == " " || $0 == "\0" }), !entry.utf8.contains(0) else {
                try fail("--env \(quoted(entry)): expected NAME=VALUE")
                continue
            }
        }
        for m in staticMaps {
            guard let eq = m.firstIndex(of: "="), m.hasPrefix("/"), eq != m.index(before: m.endIndex), !m.utf8.contains(0) else {
                try fail("--static-map \(quoted(m)): expected /MOUNT=DIR")
                continue
            }
        }
        if let umask, umask > 0o777 { try fail("--umask: \(String(umask, radix: 8)) is above 0777") }
        // --logto with --daemonize: uWSGI's daemonize() calls logto() with its own file, so that file is the log.
        try logging.validate()
        for (path, flag) in [(logTo, "--logto"), (daemonize, "--daemonize")] {
            if let path, path.isEmpty || path.utf8.contains(0) { try fail("\(flag): \(quoted(path)) is not a file path") }
        }

        // Apps.
        if app != nil, appLibrary != nil {
            try fail("--app and --app-library are mutually exclusive: give one")
        }
        if case .staticFiles(let dir) = app, dir.isEmpty { try fail("--app: static:DIR needs a directory") }
        if let appLibrary, appLibrary.isEmpty { try fail("--app-library needs a path") }
        // The swsgi_app_v1 ABI hands the library the body whole: only a limit keeps that bounded.
        if appLibrary != nil, limitPostBytes == 0 {
            try fail("--limit-post 0 (unlimited) cannot go with --app-library: the library gets the body whole, so it must be bounded")
        }
        if python.isConfigured, app != nil || appLibrary != nil {
            try fail("\(app != nil ? "--app" : "--app-library") and a Python app (--wsgi-file/--module) are mutually exclusive: give one")
        }
        try python.validate()
        try process.validate()

        // Services.
        var cacheNames = Set<String>()
        for c in caches where !cacheNames.insert(c.name).inserted { try fail("--cache2: two caches are named \(quoted(c.name))") }
        if mules.count > 256 { try fail("--mule is given \(mules.count) times; at most 256 mules") }

        // Workers.
        if processes < 1 { try fail("--processes must be at least 1 (got \(processes))") }
        if !(1...65535).contains(listenBacklog) { try fail("--listen must be between 1 and 65535 (got \(listenBacklog))") }
        if bufferSizeBytes < 1 { try fail("--buffer-size must be above 0") }
        if headerTimeoutNanoseconds == 0 { try fail("--header-timeout must be above 0") }
        if bodyTimeoutNanoseconds == 0 { try fail("--body-timeout must be above 0") }
        if !isGracefulSignal(harakiriGracefulSignal) {
            try fail("--harakiri-graceful-signal: \(harakiriGracefulSignal) is not a signal a worker can catch")
        }
        if harakiriGracefulTimeoutNanoseconds > 0, harakiriNanoseconds == 0 {
            try fail("--harakiri-graceful-timeout needs --harakiri: it is the grace period after a harakiri")
        }
        if maxRequestsDelta > 0 {
            if maxRequests == 0 { try fail("--max-requests-delta needs --max-requests") }
            if maxRequestsDelta >= maxRequests {
                try fail("--max-requests-delta (\(maxRequestsDelta)) must be below --max-requests (\(maxRequests))")
            }
        }
        if maxWorkerLifetimeDeltaNanoseconds > 0 {
            if maxWorkerLifetimeNanoseconds == 0 { try fail("--max-worker-lifetime-delta needs --max-worker-lifetime") }
            if maxWorkerLifetimeDeltaNanoseconds >= maxWorkerLifetimeNanoseconds {
                try fail("--max-worker-lifetime-delta must be below --max-worker-lifetime")
            }
        }
        if reloadOnRSSMiB > 0, evilReloadOnRSSMiB > 0, evilReloadOnRSSMiB < reloadOnRSSMiB {
            try fail("--evil-reload-on-rss (\(evilReloadOnRSSMiB)) must be at least --reload-on-rss (\(reloadOnRSSMiB))")
        }

        // Cheaper mode.
        if cheaper < 0 { try fail("--cheaper must be 0 (off) or more") }
        if cheaper > 0, cheaper >= processes {
            try fail("--cheaper (\(cheaper)) must be below --processes (\(processes))")
        }
        if let cheaperInitial {
            if cheaper == 0 { try fail("--cheaper-initial needs --cheaper") }
            if !(cheaper...processes).contains(cheaperInitial) {
                try fail("--cheaper-initial (\(cheaperInitial)) must be between --cheaper (\(cheaper)) and --processes (\(processes))")
            }
        }
        if cheaperStep < 1 { try fail("--cheaper-step must be at least 1") }
        if !(0...100).contains(cheaperBusynessMin) { try fail("--cheaper-busyness-min must be between 0 and 100") }
        if !(0...100).contains(cheaperBusynessMax) { try fail("--cheaper-busyness-max must be between 0 and 100") }
        if cheaperBusynessMin >= cheaperBusynessMax {
            try fail("--cheaper-busyness-min (\(cheaperBusynessMin)) must be below --cheaper-busyness-max (\(cheaperBusynessMax))")
        }
        if cheaperBusynessMultiplier < 1 { try fail("--cheaper-busyness-multiplier must be at least 1") }
        if cheaperBusynessBacklogAlert < 1 { try fail("--cheaper-busyness-backlog-alert must be at least 1") }
        if cheaperBusynessBacklogStep < 1 { try fail("--cheaper-busyness-backlog-step must be at least 1") }
        if cheaperRSSLimitSoftBytes > 0, cheaperRSSLimitHardBytes > 0, cheaperRSSLimitSoftBytes >= cheaperRSSLimitHardBytes {
            try fail("--cheaper-rss-limit-soft (\(cheaperRSSLimitSoftBytes)) must be below --cheaper-rss-limit-hard (\(cheaperRSSLimitHardBytes))")
        }
    }
}
