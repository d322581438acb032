import HTTP
import Testing

@Suite struct PercentDecodingTests {
    @Test func escapesBecomeBytes() {
        #expect(PercentDecoding.decode("/a%2Fb%20c") == Array("/a/b c".utf8))
        #expect(PercentDecoding.decode("/caf%C3%A9") == Array("/café".utf8))
        #expect(PercentDecoding.decode("/%e2%82%ac") == [0x2F, 0xE2, 0x82, 0xAC])
        #expect(PercentDecoding.decode("/plain") == Array("/plain".utf8))
    }

    /// PATH_INFO and the log keep a malformed escape as it is (uWSGI does); a static file's path refuses it.
    @Test func malformedEscapesAreKeptOrRefused() {
        for bad in ["/a%", "/a%4", "/a%zz", "/a%+f", "/a%-1", "%4g"] {
            #expect(PercentDecoding.decode(bad) == Array(bad.utf8), "\(bad)")
            #expect(PercentDecoding.decode(bad, strict: true) == nil, "\(bad)")
        }
        #expect(PercentDecoding.decode("/a%41%", strict: false) == Array("/aA%".utf8))
    }
}
