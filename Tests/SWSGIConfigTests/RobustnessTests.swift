@testable import SWSGIConfig
import Testing

@Suite struct Robustness {
    static let pieces = [
        "--", "-", "=", ":", "[", "]", "[swsgi]", "\n", "\r\n", " ", "\t", ";", "#", "\0", "é", "🙂", "k", "m", "g",
        "0", "1", "9", "65535", "65536", "-1", ".", "99999999999999999999", "SIG", "KILL", "TERM", "static:", "true",
        "SWSGI_", "_", "/", "0660", "::1", "x",
    ] + optionTable.flatMap(\.names)

    static func junk(_ rng: inout SplitMix) -> String {
        (0..<Int.random(in: 0...6, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    @Test func randomCommandLinesNeverCrash() {
        var rng = SplitMix(state: 1)
        for _ in 0..<3000 {
            let args = (0..<Int.random(in: 0...5, using: &rng)).map { _ in
                Bool.random(using: &rng) ? "--" + Self.junk(&rng) : Self.junk(&rng)
            }
            let error = failure(args)
            if let error { #expect(!error.contains("\n"), "\(args): \(error)") }
        }
    }

    @Test func randomEnvironmentsNeverCrash() {
        var rng = SplitMix(state: 2)
        for _ in 0..<3000 {
            let env = (0..<Int.random(in: 0...4, using: &rng)).map { _ in
                "SWSGI_" + Self.junk(&rng).uppercased() + "=" + Self.junk(&rng)
            }
            let error = failure(env: env)
            if let error { #expect(!error.contains("\n"), "\(env): \(error)") }
        }
    }

    @Test func randomIniFilesNeverCrash() {
        var rng = SplitMix(state: 3)
        for _ in 0..<3000 {
            let lines = (0..<Int.random(in: 0...6, using: &rng)).map { _ -> String in
                switch Int.random(in: 0...3, using: &rng) {
                case 0: return "[swsgi]"
                case 1: return optionTable.randomElement(using: &rng)!.name + " = " + Self.junk(&rng)
                default: return Self.junk(&rng)
                }
            }
            let error = failure(["--ini", "app.ini"], ini: lines.joined(separator: "\n"))
            // Every problem of the file at once: one line each, each naming where it is.
            for line in (error ?? "").split(separator: "\n") {
                #expect(line.hasPrefix("app.ini:") || line.hasPrefix("--"), "\(lines): \(line)")
            }
        }
    }

    @Test func everyOptionWithJunkValues() {
        var rng = SplitMix(state: 4)
        for spec in optionTable {
            for _ in 0..<100 {
                let value = Self.junk(&rng)
                _ = failure(["--\(spec.name)=\(value)"])
                _ = failure(env: ["\(OptionSpec.environmentName(spec.name))=\(value)"])
                _ = failure(["--ini", "app.ini"], ini: "[swsgi]\n\(spec.name) = \(value)")
            }
        }
    }

    @Test func hugeInputs() {
        let long = String(repeating: "a", count: 100_000)
        #expect(failure(["--" + long])?.count ?? 0 < 400)
        #expect(failure(["--processes", long])?.count ?? 0 < 400)
        #expect(failure(["--harakiri", String(repeating: "9", count: 10_000)]) != nil)
        #expect(failure(["--harakiri", "1." + String(repeating: "9", count: 10_000)]) == nil)
        #expect(failure(["--ini", "app.ini"], ini: String(repeating: "[swsgi]\n", count: 10_000) + long) != nil)
    }

    @Test func readFileErrorsAreOneLine() {
        struct Multi: Error, CustomStringConvertible { var description: String { "first\nsecond" } }
        do {
            _ = try ServerOptions.load(arguments: ["--ini", "x"], environment: [], cores: 1) { _ in throw Multi() }
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "--ini 'x': cannot read the file: first second")
        }
    }
}
