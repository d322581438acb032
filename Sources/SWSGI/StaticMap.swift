import Glibc
import Posix
import SWSGIConfig

/// uWSGI's `static-map = /MOUNT=DIR` (repeatable) and `check-static = DIR` (a map at `/`): a GET or HEAD
/// under a mount point is answered from DIR when the file is there (same checks as `--app static:DIR`:
/// no `..`, nothing outside DIR, symlinks included); when it is not, the app answers, as in uWSGI.
struct StaticMap {
    let mounts: [(prefix: String, files: StaticFiles)]

    /// The maps whose directory opens; a missing one is skipped (the app then answers its requests),
    /// reported by `problems`.
    /// A requested directory is served only through `--static-index` files (none given: the app answers it,
    /// as in uWSGI).
    init(_ specs: [String], options: StaticFileOptions = StaticFileOptions()) {
        var mounts: [(String, StaticFiles)] = []
        for spec in specs {
            guard let (prefix, dir) = Self.split(spec), let files = try? StaticFiles(root: dir, options: options, index: []) else { continue }
            mounts.append((prefix, files))
        }
        // The longest mount point wins, whatever the order given.
        self.mounts = mounts.sorted { $0.0.count > $1.0.count }
    }

    /// One line per map whose directory cannot be opened (logged once by the master).
    static func problems(_ specs: [String]) -> [String] {
        specs.compactMap { spec in
            guard let (_, dir) = split(spec) else { return "--static-map \(spec): expected /MOUNT=DIR" }
            // Only a check: the folder's fd is closed again (the master serves nothing, and its workers would inherit it).
            do { try StaticFiles(root: dir).closeFolders() } catch { return "--static-map \(spec): \(error); its requests go to the app" }
            return nil
        }
    }

    /// `/static=/srv/static` -> ("/static", "/srv/static"); a trailing `/` on the mount is dropped.
    static func split(_ spec: String) -> (String, String)? {
        guard let eq = spec.firstIndex(of: "=") else { return nil }
        var prefix = String(spec[..<eq])
        while prefix.count > 1, prefix.hasSuffix("/") { prefix.removeLast() }
        if prefix == "/" { prefix = "" }
        return (prefix, String(spec[spec.index(after: eq)...]))
    }

    /// `app` behind the maps.
    func wrap(_ app: @escaping Application) -> Application {
        guard !mounts.isEmpty else { return app }
        return { request in
            guard request.method == "GET" || request.method == "HEAD" else { return try app(request) }
            for (prefix, files) in mounts {
                let path = request.path
                guard path.hasPrefix(prefix) else { continue }
                let rest = path.dropFirst(prefix.count)
                guard rest.isEmpty || rest.hasPrefix("/") else { continue }
                let response = try files.respond(request, path: rest.isEmpty ? "/" : String(rest))
                // Not there (or a directory without a --static-index file, or a --static-skip-ext one): the app
                // decides, as uWSGI does.
                if response.status == 404 { continue }
                return response
            }
            return try app(request)
        }
    }
}
