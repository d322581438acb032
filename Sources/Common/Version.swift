/// The one version number of the package: both programs' `--version`, the stats JSON, and the wheel
/// (Packaging/wheel/build reads it from the built binary's `--version`, so it is written only here).
public let packageVersion = "1.0.0"
