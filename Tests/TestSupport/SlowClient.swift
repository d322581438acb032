// A client that reads a download slowly (`--offload-threads` tests): a TCP connection with a small receive
// buffer, its response head awaited, sips of the body, then the rest at full speed.
import Glibc

/// A TCP connection to 127.0.0.1:`port` with a 4 KiB receive buffer, set before connect so the window the client
/// advertises stays small: the server's sends block as soon as the kernel buffers between them are full.
public func slowClient(port: UInt16) throws -> Client {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
    var size: Int32 = 4096
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    var address = loopbackAddress(port: port)
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
        let e = errno
        close(fd)
        throw TestFailure("connect 127.0.0.1:\(port): \(String(cString: strerror(e)))")
    }
    return Client(adopting: fd)
}

private let headEnd = Array("\r\n\r\n".utf8)

extension Client {
    /// Sends GET `target` and waits until the response head has arrived (the server has started on the body).
    public func startDownload(_ target: String, fields: String = "", timeout: Double = 5) throws {
        try send("GET \(target) HTTP/1.1\r\nHost: t\r\n\(fields)\r\n")
        let deadline = monotonicSeconds() + timeout
        while buffer.firstRange(of: headEnd) == nil {
            guard fill(until: deadline), !sawEOF else { throw TestFailure("no response head for \(target) within \(timeout) s") }
        }
    }

    /// Up to `bytes` more into `buffer` if some arrive within `milliseconds` (a slow reader's sip); the count read.
    @discardableResult
    public func sip(bytes: Int, milliseconds: Int32) -> Int {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, milliseconds) > 0 else { return 0 }
        var chunk = [UInt8](repeating: 0, count: bytes)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, bytes, 0) }
        if n > 0 { buffer += chunk[0..<n] }
        return max(0, n)
    }

    /// Reads the rest of a download at full speed: its head and the `length` body bytes (fewer when the server
    /// closed first).
    public func finishDownload(length: Int, timeout: Double = 10) throws -> (head: String, body: [UInt8]) {
        let deadline = monotonicSeconds() + timeout
        while true {
            if let end = buffer.firstRange(of: headEnd), buffer.count - end.upperBound >= length { break }
            if sawEOF { break }
            guard fill(until: deadline) else { throw TestFailure("download not complete within \(timeout) s: \(buffer.count) bytes") }
        }
        guard let end = buffer.firstRange(of: headEnd) else { throw TestFailure("no response head") }
        return (String(decoding: buffer[..<end.lowerBound], as: UTF8.self), Array(buffer[end.upperBound...]))
    }
}

extension Client {
    /// The local port of this TCP connection; nil when the kernel will not say.
    public var localPort: UInt16? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return rc == 0 ? UInt16(bigEndian: address.sin_port) : nil
    }

    /// The server's end of this loopback connection as /proc/net/tcp shows it: its TCP state (`ESTABLISHED`,
    /// `FIN_WAIT1` once the server closed or shut down its sending side with bytes not yet delivered, ...) and
    /// the bytes in its send queue. Nil when the kernel holds no such socket any more (reset, or all done).
    public func serverEnd(serverPort: UInt16) -> (state: String, sendQueue: Int)? {
        guard let clientPort = localPort, let table = readProcFile("/proc/net/tcp") else { return nil }
        let local = "0100007F:" + hex4(serverPort), remote = "0100007F:" + hex4(clientPort)
        let states = ["01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
                      "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"]
        for line in table.split(separator: "\n").dropFirst() {
            // sl local_address rem_address st tx_queue:rx_queue ...
            let f = line.split(separator: " ")
            guard f.count > 4, f[1] == local, f[2] == remote else { continue }
            let queues = f[4].split(separator: ":")
            return (states[String(f[3])] ?? String(f[3]), Int(queues.first ?? "", radix: 16) ?? 0)
        }
        return nil
    }
}

private func hex4(_ port: UInt16) -> String {
    let digits = String(port, radix: 16, uppercase: true)
    return String(repeating: "0", count: 4 - digits.count) + digits
}
