import Glibc

/// Talks sd_notify to whoever supervises this process (systemd Type=notify, or hupwatch), when
/// NOTIFY_SOCKET names one. Both programs use it, so the protocol's details live once.
public final class SdNotifier {
    public let address: String
    private let sender: Int32

    /// Nil when the environment names no NOTIFY_SOCKET.
    public init?(environment: [String]) throws {
        guard let address = lookup("NOTIFY_SOCKET", in: environment), !address.isEmpty else { return nil }
        self.address = address
        sender = try UnixSocket.datagram().release()
    }

    deinit { close(sender) }

    /// The socket a forked child must close.
    public var fd: Int32 { sender }

    /// Sends one message (`READY=1`, `RELOADING=1`, `STOPPING=1`, `STATUS=...`). RELOADING=1 carries the
    /// MONOTONIC_USEC stamp systemd 253+ requires with it (sd_notify(3)).
    public func send(_ text: String) throws {
        var message = text
        if NotifyMessage(Array(text.utf8)).value("RELOADING") == "1" {
            message += "\nMONOTONIC_USEC=\(monotonicNanoseconds() / 1000)"
        }
        try UnixSocket.send(datagram: message, to: address, from: sender)
    }
}
