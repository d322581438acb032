import CGlibcShim
import Glibc

/// PR_SET_PDEATHSIG: the signal this process gets when its parent dies.
public func setParentDeathSignal(_ sig: Int32) -> Bool { shim_set_pdeathsig(sig) == 0 }

/// Rewrites what `ps` shows for this process (argv's memory, as uWSGI does) and its 15-byte comm name.
public func setProcessTitle(_ title: String) {
    // comm holds 15 bytes: keep the end, where "worker N" is.
    setProcessName(String(decoding: title.utf8.suffix(15), as: UTF8.self))
    guard CommandLine.argc > 0, let first = CommandLine.unsafeArgv[0], argvRoom > 1 else { return }
    let room = argvRoom
    memset(first, 0, room)
    let bytes = Array(title.utf8.prefix(room - 1))
    _ = bytes.withUnsafeBufferPointer { b in memcpy(first, b.baseAddress!, b.count) }
}

/// Resident memory of a process from /proc/PID/statm, nil if it is gone.
public func residentBytes(pid: Int32) -> Int? {
    let fd = open("/proc/\(pid)/statm", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    return residentBytes(statmFD: fd)
}

/// Resident memory read from an open statm file (one pread: cheap enough to run after every request).
public func residentBytes(statmFD fd: Int32) -> Int? { statmBytes(fd, field: 1) }

/// The address space (VmSize, statm's first field) read from an open statm file: uWSGI's `vsz`.
public func addressSpaceBytes(statmFD fd: Int32) -> Int? { statmBytes(fd, field: 0) }

/// A process's address space (VmSize) in bytes, nil if it is gone.
public func addressSpaceBytes(pid: Int32) -> Int? {
    let fd = open("/proc/\(pid)/statm", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    return addressSpaceBytes(statmFD: fd)
}

/// Field `field` (in pages) of an open statm file, in bytes.
private func statmBytes(_ fd: Int32, field: Int) -> Int? {
    var buf = [UInt8](repeating: 0, count: 128)
    let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    guard n > 0 else { return nil }
    let fields = buf[0..<n].split(separator: UInt8(ascii: " "))
    guard fields.count > field, let pages = Int(String(decoding: fields[field], as: UTF8.self)) else { return nil }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// The bytes argv's strings occupy, measured once before any title overwrites them
/// (they are contiguous: from argv[0] to the end of the last one).
let argvRoom: Int = {
    let argc = Int(CommandLine.argc)
    let argv = CommandLine.unsafeArgv
    guard argc > 0, let first = argv[0] else { return 0 }
    var end = first + strlen(first) + 1
    for i in 1..<argc { if let a = argv[i], a == end { end = a + strlen(a) + 1 } }
    return end - first
}()

/// This program's own file, symlinks resolved (/proc/self/exe); nil if /proc is not mounted.
public func ownExecutablePath() -> String? {
    guard let exe = realpath("/proc/self/exe", nil) else { return nil }
    defer { free(exe) }
    return String(cString: exe)
}
