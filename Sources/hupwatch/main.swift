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
