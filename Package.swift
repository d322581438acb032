// swift-tools-version: 6.0
import PackageDescription

// Shipped targets import Glibc only (plus the CGlibcShim headers): no dependencies,
// no Foundation, no Dispatch. Tests may use Foundation and Swift Testing.
let package = Package(
    name: "hupwatch",
    products: [
        .executable(name: "hupwatch", targets: ["hupwatch"]),
        .executable(name: "swsgi", targets: ["swsgi"]),
        .library(name: "SWSGI", targets: ["SWSGI"]),
    ],
    targets: [
        // glibc functions and macros that `import Glibc` leaves out, as static inline wrappers.
        .target(name: "CGlibcShim"),
        // What both programs share, as pure values: process end status, Instant and the duration grammar,
        // signal names, the socket path rule, sd_notify messages, JSON string escaping.
        .target(name: "Common"),
        // fds, sockets, signals, spawning, waiting, timers, the event reactor: the syscalls live here.
        .target(name: "Posix", dependencies: ["CGlibcShim", "Common"]),
        // hupwatch's reload state machine and option parsing: pure values, no syscalls.
        .target(name: "ReloadCore", dependencies: ["Common"]),
        .executableTarget(name: "hupwatch", dependencies: ["Common", "Posix", "ReloadCore"]),
        // HTTP/1.1 request parser and response writer over bytes: no sockets.
        .target(name: "HTTP"),
        // swsgi's master state machine (worker table, respawn, harakiri, recycling): pure values.
        .target(name: "WorkerCore", dependencies: ["Common"]),
        // swsgi's option table: command line, --ini files and SWSGI_* variables, strictly checked.
        .target(name: "SWSGIConfig", dependencies: ["Common", "ServicesCore"]),
        // Timers and cron for the services (issue 13): the scheduler as pure values, no syscalls.
        .target(name: "ServicesCore"),
        // The server library users build apps against.
        .target(name: "SWSGI", dependencies: ["Common", "Posix", "HTTP", "WorkerCore", "SWSGIConfig", "ServicesCore"]),
        // The services' Swift API in use (cache, locks, timers, mules): an example app the tests drive.
        .executableTarget(name: "ServicesExample", dependencies: ["SWSGI"]),
        // CPython found and loaded at run time (dlopen + dlsym of stable-ABI functions): no Python headers.
        .target(name: "PythonRuntime", dependencies: ["CGlibcShim", "Common", "Posix"]),
        // PEP 3333: a Python WSGI app served as a swsgi application.
        .target(name: "WSGI", dependencies: ["SWSGI", "PythonRuntime", "HTTP", "SWSGIConfig", "CGlibcShim", "Common", "Posix"]),
        .executableTarget(name: "swsgi", dependencies: ["SWSGI", "WSGI"]),
        // A deliberately misbehaving test server used by the integration tests.
        .executableTarget(name: "TestChild", dependencies: ["Posix"]),
        // What the test targets share: temp folders, waiting, child processes, /proc, raw HTTP clients,
        // load loops, nginx, missing tools. Not shipped: it lives under Tests/, only test targets depend on
        // it, and it may use Foundation.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "PosixTests", dependencies: ["Posix", "TestSupport"]),
        .testTarget(name: "CommonTests", dependencies: ["Common"]),
        .testTarget(name: "ReloadCoreTests", dependencies: ["ReloadCore"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "TestSupport"]),
        .testTarget(name: "WorkerCoreTests", dependencies: ["WorkerCore"]),
        .testTarget(name: "WorkerManagementTests", dependencies: ["WorkerCore", "TestSupport"]),
        .testTarget(name: "SWSGITests", dependencies: ["HTTP", "TestSupport"]),
        .testTarget(name: "SWSGIConfigTests", dependencies: ["SWSGIConfig", "TestSupport"]),
        .testTarget(name: "ServicesCoreTests", dependencies: ["ServicesCore"]),
        .testTarget(name: "IntegrationTests", dependencies: ["Posix", "TestSupport"]),
        .testTarget(name: "SupervisorTests", dependencies: ["TestSupport"]),
        .testTarget(name: "TestSupportTests", dependencies: ["TestSupport"]),
        .testTarget(name: "WSGITests", dependencies: ["TestSupport", "WSGI"]),
        // The wheel (Packaging/wheel/build) installed with pip into fresh virtualenvs.
        .testTarget(name: "PackagingTests", dependencies: ["TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
