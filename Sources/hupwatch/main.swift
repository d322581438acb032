import Glibc
import Posix
import ReloadCore

if let bad = firstNonUTF8Argument(rawCommandLine()) {
    // Swift would repair the bytes into U+FFFD and hand the command another path than the one given.
    writeStderr("hupwatch: argument \(bad) is not valid UTF-8; hupwatch passes arguments on only as given, so it refuses rather than rewrite it")
    exit(ExitCode.usage)
}
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
case .control(let request):
    exit(ControlClient.run(request))
}
