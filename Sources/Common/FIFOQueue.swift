/// A first-in, first-out queue that lets go of each element as it is taken. (An array read through a head
/// index keeps every element taken until the queue runs empty: a request threads' job queue that a steady load
/// never empties kept each job's connection open, so a response saying `Connection: close` was never followed
/// by the close.) Taken slots are reclaimed once they are half the storage, so memory stays bounded by what is
/// queued at once.
public struct FIFOQueue<Element> {
    private var slots: [Element?] = []
    private var head = 0

    public init() {}

    public var isEmpty: Bool { head == slots.count }
    /// The element `popFirst` would take, left in place.
    public var first: Element? { head < slots.count ? slots[head] : nil }
    public var count: Int { slots.count - head }

    public mutating func append(_ element: Element) { slots.append(element) }

    public mutating func popFirst() -> Element? {
        guard head < slots.count else { return nil }
        let element = slots[head]
        slots[head] = nil
        head += 1
        if head == slots.count {
            slots.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 32 && head * 2 >= slots.count {
            slots.removeFirst(head)
            head = 0
        }
        return element
    }
}

extension FIFOQueue: Sendable where Element: Sendable {}
extension FIFOQueue: Equatable where Element: Equatable {}
