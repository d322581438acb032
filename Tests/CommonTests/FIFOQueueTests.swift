import Common
import Testing

@Suite struct FIFOQueueTests {
    final class Tracked {
        let n: Int
        init(_ n: Int) { self.n = n }
    }

    /// Elements come out in order, and each is let go of as it is taken although the queue never runs empty
    /// (a steady load on the request threads' job queue).
    @Test func takenElementsAreReleasedWhileTheQueueStaysNonEmpty() {
        var q = FIFOQueue<Tracked>()
        var taken: [Weak] = []
        var next = 0
        for _ in 0..<3 {
            q.append(Tracked(next))
            next += 1
        }
        for _ in 0..<1_000 {
            q.append(Tracked(next))
            next += 1
            let t = q.popFirst()
            #expect(t?.n == next - 4)
            taken.append(Weak(t))
        }
        #expect(q.count == 3 && !q.isEmpty)
        #expect(taken.allSatisfy { $0.value == nil }, "taken elements still referenced by the queue")
        while let t = q.popFirst() { #expect(t.n >= next - 3) }
        #expect(q.isEmpty && q.count == 0 && q.popFirst() == nil)
    }

    struct Weak {
        weak var value: Tracked?
        init(_ v: Tracked?) { value = v }
    }
}
