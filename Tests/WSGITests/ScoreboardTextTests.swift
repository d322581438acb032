// The scoreboard's running-request text ("METHOD path", cut to its field): what the stats server and the
// harakiri log show. A path from the uwsgi protocol (nginx passes PATH_INFO decoded) can hold any UTF-8:
// a cut must fall between characters, never inside one (a cut character reads back as U+FFFD).
import Testing
import TestSupport
@testable import SWSGI

@Suite struct ScoreboardTextTests {
    /// Characters of 1 to 4 UTF-8 bytes.
    static let alphabet: [Character] = ["a", "/", "é", "ж", "€", "字", "😀", "𝄞"]

    @Test(arguments: 0..<40)
    func cutRequestTextEndsOnACharacterBoundary(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let board = try Scoreboard(capacity: 1, threads: 2)
        for _ in 0..<50 {
            let method = String((0..<Int.random(in: 1...8, using: &rng)).map { _ in Self.alphabet.randomElement(using: &rng)! })
            let path = "/" + String((0..<Int.random(in: 0...140, using: &rng)).map { _ in Self.alphabet.randomElement(using: &rng)! })
            let full = method + " " + path
            board.setRequest(0, method: method, path: path)
            board.setRequest(0, core: 1, method: method, path: path)
            for (shown, room) in [(board.request(0), Scoreboard.pathBytes), (board.request(0, core: 1), Scoreboard.coreTextBytes)] {
                #expect(!shown.unicodeScalars.contains("\u{FFFD}"), "seed \(seed): \(full.debugDescription) shown as \(shown.debugDescription)")
                #expect(full.hasPrefix(shown) || full.utf8.starts(with: shown.utf8), "seed \(seed): \(shown.debugDescription) is not a prefix of \(full.debugDescription)")
                #expect(shown.utf8.count <= room - 1, "seed \(seed): \(shown.utf8.count) bytes in a field of \(room)")
                // Cut only when the whole text does not fit, and then by less than one character (4 bytes).
                if full.utf8.count <= room - 1 {
                    #expect(shown == full, "seed \(seed): \(full.debugDescription) fits but shows \(shown.debugDescription)")
                } else {
                    #expect(shown.utf8.count > room - 1 - 4, "seed \(seed): cut to \(shown.utf8.count) bytes of \(room - 1)")
                }
            }
        }
    }
}

/// A worker skips rewriting its row when the request's method and path are the ones already there: "the same"
/// must mean the same bytes. Canonically equivalent text ("é" and "e" + U+0301, "K" and the Kelvin sign) is
/// equal as a String but not as bytes, and the row must show the bytes this request sent (a uwsgi-protocol path
/// can hold any UTF-8).
@Suite struct ScoreboardRowMemoTests {
    @Test(arguments: [("/sleep\u{E9}", "/sleepe\u{301}"), ("/sleepK", "/sleep\u{212A}"), ("/a", "/a"), ("/a", "/b"),
                      ("/a/path/longer/than/fifteen/bytes/\u{E9}", "/a/path/longer/than/fifteen/bytes/e\u{301}"),
                      ("/a/path/longer/than/fifteen/bytes", String(decoding: Array("/a/path/longer/than/fifteen/bytes".utf8), as: UTF8.self))])
    func theRowShowsThisRequestsBytes(first: String, second: String) throws {
        let board = try Scoreboard(capacity: 1)
        var last = Scoreboard.RowText()
        board.setRequest(0, method: "GET", path: first, unlessAlready: &last)
        #expect(Array(board.request(0).utf8) == Array(("GET " + first).utf8))
        board.setRequest(0, method: "GET", path: second, unlessAlready: &last)
        #expect(Array(board.request(0).utf8) == Array(("GET " + second).utf8), "\(first.debugDescription) then \(second.debugDescription)")
    }
}
