import CGlibcShim
import Glibc
import Posix
import SWSGIConfig

/// `--uid` / `--gid`: the ids to run as, resolved before anything is bound, applied once the listener
/// is bound and before any app code (a library's constructors included) runs. Every step is checked,
/// and then so is the result: ids not all equal to the targets, or a way back to root, stop swsgi.
struct PrivilegeDrop {
    let uid: uid_t
    let gid: gid_t
    /// The user's name when --uid named a passwd entry: its supplementary groups come along.
    let userName: String?
    let description: String

    /// Nil when neither option is given.
    static func resolve(_ o: ServerOptions) throws -> PrivilegeDrop? {
        // uWSGI's `uid =` / `gid =` (empty): uWSGI drops nothing when not started as root, and as root
        // stops ("user  not found"): swsgi does the same rather than serve as root.
        for (value, flag) in [(o.uid, "--uid"), (o.gid, "--gid")] where value == "" && geteuid() == 0 {
            throw SWSGIError("\(flag) is empty: started as root, swsgi needs the \(flag == "--uid" ? "user" : "group") to run as (uWSGI stops here too); name it or remove the line")
        }
        var o = o
        if o.uid == "" { o.uid = nil }
        if o.gid == "" { o.gid = nil }
        guard o.uid != nil || o.gid != nil else { return nil }
        var uid = getuid()
        var gid = getgid()
        var name: String? = nil
        if let u = o.uid {
            if let pw = getpwnam(u) {
                uid = pw.pointee.pw_uid
                gid = pw.pointee.pw_gid
                name = String(cString: pw.pointee.pw_name)
            } else if let n = UInt32(u), n != UInt32.max {
                uid = n
                if let pw = getpwuid(n) {
                    gid = pw.pointee.pw_gid
                    name = String(cString: pw.pointee.pw_name)
                } else if o.gid == nil {
                    throw SWSGIError("--uid \(u): no passwd entry, so no group to go with it: give --gid too")
                }
            } else {
                throw SWSGIError("--uid \(u): no such user")
            }
        }
        if let g = o.gid {
            if let gr = getgrnam(g) { gid = gr.pointee.gr_gid }
            else if let n = UInt32(g), n != UInt32.max { gid = n }
            else { throw SWSGIError("--gid \(g): no such group") }
        }
        return PrivilegeDrop(uid: uid, gid: gid, userName: name,
                             description: "uid \(uid)\(name.map { " (\($0))" } ?? ""), gid \(gid)")
    }

    /// Groups, then gid, then uid (the order that leaves no id behind), each call checked.
    func apply() throws {
        if getuid() == uid && geteuid() == uid && getgid() == gid && getegid() == gid && uid != 0 { return }
        if geteuid() == 0 {
            if let userName {
                try syscall("initgroups", userName) { initgroups(userName, gid) }
            } else {
                var g = gid
                try syscall("setgroups") { shim_setgroups(1, &g) }
            }
        }
        try syscall("setresgid", "\(gid)") { shim_setresgid(gid, gid, gid) }
        try syscall("setresuid", "\(uid)") { shim_setresuid(uid, uid, uid) }
        try verify()
    }

    /// Refuses to go on unless every id is the target and root cannot be regained.
    func verify() throws {
        var r: uid_t = 0, e: uid_t = 0, s: uid_t = 0
        var gr: gid_t = 0, ge: gid_t = 0, gs: gid_t = 0
        try syscall("getresuid") { shim_getresuid(&r, &e, &s) }
        try syscall("getresgid") { shim_getresgid(&gr, &ge, &gs) }
        guard r == uid, e == uid, s == uid, gr == gid, ge == gid, gs == gid else {
            throw SWSGIError("privilege drop to \(description) incomplete: uids \(r)/\(e)/\(s), gids \(gr)/\(ge)/\(gs)")
        }
        if uid != 0 {
            if shim_setresuid(0, 0, 0) == 0 { throw SWSGIError("privilege drop to \(description) can be undone (setresuid(0) succeeded): refusing to go on") }
            if gid != 0 && shim_setresgid(0, 0, 0) == 0 {
                throw SWSGIError("privilege drop to \(description) can be undone (setresgid(0) succeeded): refusing to go on")
            }
        }
    }
}
