import HTTP
import SWSGIConfig

typealias ServerSettings = ServerOptions

extension ServerOptions {
    /// The parser limits these options ask for.
    var limits: HTTPLimits {
        HTTPLimits(maxHeadBytes: bufferSizeBytes, maxBodyBytes: limitPostBytes == 0 ? nil : limitPostBytes)
    }
}
