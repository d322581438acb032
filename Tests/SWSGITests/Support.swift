// A real swsgi master launched by a test, on TestSupport's child processes, temp folders and clients.
import Foundation
import Glibc
import Testing
@_exported import TestSupport
