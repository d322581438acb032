/// An error that is the app's own failure (a Python exception, say), as opposed to the client going
/// away or a write timing out: `--reload-on-exception` recycles the worker after such a request.
public protocol ApplicationFailure: Error {}
