import TestSupport
import Foundation
import SRTP

/// Runs Python `cryptography`'s RFC 5649 implementation as an independent oracle.
///
/// One `python3 -c` process handles every case: each case is one argument,
/// "kek-hex:plaintext-hex:our-wrap-hex"; stdout answers one line per case,
/// "python-wrap-hex python-unwrap-of-ours-hex". (Arguments, not stdin, so a python3 that
/// exits early cannot raise SIGPIPE in the test process.)
enum PythonKeyWrapOracle {
    struct Answer: Equatable {
        var wrapped: [UInt8]
        var unwrappedOurs: [UInt8]
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private static let script = """
    import sys
    try:
        from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding, aes_key_unwrap_with_padding
    except Exception as e:
        sys.stderr.write("cannot import cryptography.hazmat.primitives.keywrap: %r\\n" % (e,))
        sys.exit(3)
    for arg in sys.argv[1:]:
        kek, plaintext, ours = (bytes.fromhex(p) for p in arg.split(":"))
        wrapped = aes_key_wrap_with_padding(kek, plaintext)
        unwrapped = aes_key_unwrap_with_padding(kek, ours)
        print(wrapped.hex(), unwrapped.hex())
    """

    static func run(_ cases: [(kek: [UInt8], plaintext: [UInt8], ourWrap: [UInt8])]) throws(Failure) -> [Answer] {
        let hint = "the RFC 5649 cross-check needs python3 with the `cryptography` package; run Scripts/bootstrap.sh"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
            + cases.map { "\($0.kek.hexString):\($0.plaintext.hexString):\($0.ourWrap.hexString)" }
        let stdout = Pipe(), stderr = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdout
        process.standardError = stderr
        do {
            try process.run()
        } catch {
            throw Failure(description: "could not start python3 (\(error)); \(hint)")
        }
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: err, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let what = process.terminationStatus == 127 ? "python3 not found" : "python3 exited with status \(process.terminationStatus)"
            throw Failure(description: "\(what): \(message); \(hint)")
        }
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n")
        guard lines.count == cases.count else {
            throw Failure(description: "python3 answered \(lines.count) lines for \(cases.count) cases")
        }
        var answers: [Answer] = []
        for line in lines {
            let fields = line.split(separator: " ")
            guard fields.count == 2,
                  let wrapped = [UInt8](hexString: String(fields[0])),
                  let unwrapped = [UInt8](hexString: String(fields[1])) else {
                throw Failure(description: "unparsable python3 output line: \(line)")
            }
            answers.append(Answer(wrapped: wrapped, unwrappedOurs: unwrapped))
        }
        return answers
    }
}
