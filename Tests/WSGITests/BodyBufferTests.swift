// wsgi.input's buffer on its own: readline with a size limit over lines longer than it.
import Testing
@testable import WSGI

@Suite struct BodyBufferTests {
    /// A body delivered in `pieces`.
    func buffer(_ pieces: [String]) -> BodyBuffer {
        var rest = pieces.map { Array($0.utf8) }
        return BodyBuffer { rest.isEmpty ? nil : rest.removeFirst() }
    }

    @Test func readlineWithALimitWalksALongLineInPieces() throws {
        let line = String(repeating: "x", count: 20_000) + "\n"
        let b = buffer([line, "second\n"])
        var parts: [[UInt8]] = []
        while true {
            let part = try b.readline(7)
            if part.isEmpty { break }
            parts.append(part)
        }
        // 20,000 x's and a newline in 7-byte pieces, then the second line whole.
        #expect(parts.count == 20_001 / 7 + 1 + 1)
        #expect(parts.dropLast().allSatisfy { $0.count == 7 || $0.last == 10 })
        #expect(parts.last == Array("second\n".utf8))
        #expect(parts.dropLast().reduce(0) { $0 + $1.count } == 20_001)
    }

    @Test func readlineFindsANewlineInsideTheLimitAcrossPieces() throws {
        let b = buffer(["ab", "c\nde", "f\n"])
        #expect(try b.readline(10) == Array("abc\n".utf8))
        #expect(try b.readline(2) == Array("de".utf8))
        #expect(try b.readline(-1) == Array("f\n".utf8))
        #expect(try b.readline(-1) == [])
    }

    @Test func readlineWithoutNewlineEndsAtTheBody() throws {
        let b = buffer(["abc", "def"])
        #expect(try b.readline(100) == Array("abcdef".utf8))
        #expect(try b.readline(100) == [])
    }
}
