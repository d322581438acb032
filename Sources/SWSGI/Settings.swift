import HTTP
import SWSGIConfig

typealias ServerSettings = ServerOptions

extension ServerOptions {
    /// The parser limits these options ask for.
    var limits: HTTPLimits {
        var l = HTTPLimits(maxHeadBytes: bufferSizeBytes, maxBodyBytes: limitPostBytes == 0 ? nil : limitPostBytes)
        l.maxRequestLineBytes = limitRequestLineBytes
        l.maxFieldBytes = limitRequestFieldBytes
        l.maxFields = limitRequestFields
        l.underscoreFields = switch underscoreHeaders {
        case .drop: .drop
        case .refuse: .refuse
        case .keep: .keep
        }
        return l
    }
}
