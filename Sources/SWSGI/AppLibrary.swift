import Glibc

/// `--app-library PATH.so`: a user's app compiled as a shared library. (Loader: see AppLibraryABI.)
enum AppLibrary {
    static func load(_ path: String) throws -> Application {
        throw SWSGIError("--app-library \(path): not supported yet")
    }
}
