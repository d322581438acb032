// A real swsgi master launched by a test (the same helper as SWSGITests'), on TestSupport.
import Foundation
import Glibc
import Testing
@_exported import TestSupport
