/// One value kept outside the object that owns it, for a hot stored property: the owner declares the property
/// as computed, with `unsafeAddress { cell.address }` and `unsafeMutableAddress { cell.pointer }`, and its uses
/// read as before. A stored `var` of a class that is ever changed through a mutating call or `inout` costs a
/// dynamic exclusivity check (about 80 instructions) on every access, and a worker's loop reads a few of them per
/// request; memory reached through a pointer is not tracked. Only for values no access can overlap (no mutating
/// call on it that calls back into its owner).
public final class Cell<Value> {
    public let pointer: UnsafeMutablePointer<Value>

    public init(_ value: Value) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: value)
    }

    public var address: UnsafePointer<Value> { UnsafePointer(pointer) }

    deinit {
        pointer.deinitialize(count: 1)
        pointer.deallocate()
    }
}
