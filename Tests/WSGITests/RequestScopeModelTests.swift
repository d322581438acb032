// RequestScope on its own: seeded random sequences of requests, each handing out a binding the app may
// keep; after every step only the request in hand's binding is live, and a kept one never is again.
import Testing
import TestSupport
@testable import WSGI

@Suite struct RequestScopeModelTests {
    /// What the model tracks of one binding: the generation it serves and whether the app kept it.
    struct Binding { var generation: UInt64; var kept: Bool }

    @Test(arguments: 0..<20)
    func onlyTheRequestInHandIsLive(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var scope = RequestScope()
        var current = Binding(generation: 0, kept: false)
        var retired: [Binding] = []
        var inHand = false
        for step in 0..<400 {
            if !inHand {
                current.generation = scope.open()
                inHand = true
            } else {
                // The app may keep the set during its request; at the end a kept set is retired for good.
                if Bool.random(using: &rng) && Int.random(in: 0..<4, using: &rng) == 0 { current.kept = true }
                scope.close()
                inHand = false
                if current.kept {
                    retired.append(current)
                    current = Binding(generation: 0, kept: false)
                }
            }
            #expect(scope.isOpen(current.generation) == inHand, "seed \(seed) step \(step): the set in use is live only in a request")
            for r in retired {
                #expect(!scope.isOpen(r.generation), "seed \(seed) step \(step): a retired set is dead for good")
            }
        }
        #expect(!scope.isOpen(0), "a set never bound is not live")
    }
}
