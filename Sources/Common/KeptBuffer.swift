/// A byte buffer kept between requests (a response being built, a body being gathered): taken empty with its
/// capacity, so it is uniquely held while written, and given back after, unless a large body grew it. (Inlinable:
/// called across modules on every request.)
public enum KeptBuffer {
    /// A buffer grown past this is not kept.
    public static let keptBytes = 65536

    /// The buffer kept in `slot`, emptied; `slot` is left empty until `giveBack`.
    @inlinable @inline(__always)
    public static func take(_ slot: inout [UInt8]) -> [UInt8] {
        var b = slot
        slot = []
        b.removeAll(keepingCapacity: true)
        return b
    }

    /// Keeps `buffer` in `slot` for the next `take`, unless it grew past `keptBytes`.
    @inlinable @inline(__always)
    public static func giveBack(_ buffer: [UInt8], to slot: inout [UInt8]) {
        if buffer.capacity <= keptBytes { slot = buffer }
    }
}
