import Glibc
import Posix
import ReloadCore

let arguments = Array(CommandLine.arguments.dropFirst())
let parsed: ParsedCommandLine
do {
    parsed = try HupwatchOptions.parse(arguments, signalNumber: SignalName.parse)
} catch {
    writeStderr("hupwatch: \(error.message)")
    exit(ExitCode.usage)
}
switch parsed {
case .help:
    writeStdout(helpText)
    exit(0)
case .version:
    writeStdout(version)
    exit(0)
case .run(let options):
    exit(Runner.start(options))
}

func writeStdout(_ text: String) {
    var bytes = Array(text.utf8)
    if bytes.last != 10 { bytes.append(10) }
    _ = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
}
