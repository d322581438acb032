import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    /// Flask and Django, served as they are and wrapped in wsgiref.validate, with each interpreter.
    @Suite struct Frameworks {
        enum Framework: String, CaseIterable, CustomStringConvertible, Sendable {
            case flask, django
            var description: String { rawValue }
            var source: String { self == .flask ? Fixtures.flask : Fixtures.djangoApp }
            var index: String { self == .flask ? "flask index" : "django index" }
        }

        static var cases: [(Framework, PythonUnderTest, Bool)] {
            Framework.allCases.flatMap { f in PythonUnderTest.all.flatMap { p in [(f, p, false), (f, p, true)] } }
        }

        @Test(arguments: cases)
        func routesFormsJSONStreamsFilesAndErrors(_ framework: Framework, _ python: PythonUnderTest, _ validated: Bool) throws {
            try python.require(framework.rawValue)
            let module = validated ? "validated_site" : "site_app"
            try withPython(["--processes", "2", "--chdir", "{dir}", "--module", module], python: python, setUp: { dir in
                var env = try writeProbe(dir)
                try dir.write("site_app.py", framework.source)
                try dir.write("validated_site.py", Fixtures.validated(module: "site_app"))
                env["PYTHONDONTWRITEBYTECODE"] = "1"
                return env
            }) { s, dir throws in
                #expect(try s.get("/").text == framework.index)
                #expect(try s.get("/hello/swsgi").text == "hello swsgi")
                let form = try post(s, "/form", body: Array("name=Ada&age=36".utf8), contentType: "application/x-www-form-urlencoded")
                #expect(form.status == 200 && form.text == "name=Ada age=36")
                let json = try post(s, "/json", body: Array(#"{"n": 21}"#.utf8), contentType: "application/json")
                let decoded = try #require(try JSONSerialization.jsonObject(with: Data(json.body)) as? [String: Any])
                #expect(decoded["doubled"] as? Int == 42)
                let stream = try s.get("/stream")
                #expect(stream.text == "line 0\nline 1\nline 2\n")
                let file = try s.get("/file")
                let data = try probeData(dir)
                #expect(file.status == 200 && file.body == data)
                let boom = try s.get("/boom")
                #expect(boom.status == 500)
                #expect(s.waitForLog("failed on purpose"), "the framework's traceback reaches the log")
                #expect(try s.get("/").status == 200, "the worker serves on after the 500")
                #expect(s.log.contains(python.name == "debian" ? "Python 3.11.2" : "Python 3."), "the interpreter asked for is the one used")
                #expect(!s.log.contains("VALIDATOR"), "wsgiref.validate warned: \(s.log)")
                #expect(!s.log.contains("AssertionError"), "wsgiref.validate failed: \(s.log)")
            }
        }
    }
}
