// Every file of this target sees TestSupport's helpers (TempDir, waitUntil, Child, Client, ...) without
// importing it itself, as when they lived in this target.
@_exported import TestSupport
